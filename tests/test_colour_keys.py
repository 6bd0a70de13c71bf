"""mmgscnn.visualization.colour_keys: the class legend wraps into rows, the
colour bar of the boundary map."""
import pytest

from helpers import count_colour, row_with_gradient
from mmgscnn.visualization import PictureStyle, class_legend, colour_bar


def test_legend_wraps_into_rows():
    style = PictureStyle()
    names = [f'class number {i}' for i in range(20)]
    colours = [(10 * i, 255 - 10 * i, 7) for i in range(20)]
    wide = class_legend(names, colours, 2000, style)
    narrow = class_legend(names, colours, 480, style)
    assert narrow.shape[1] == 480 and narrow.shape[0] > 2 * wide.shape[0]
    for colour in colours:  # every entry drawn, none cut off
        assert count_colour(narrow, colour) >= (style.swatch - 2) ** 2
    with pytest.raises(ValueError, match='one colour per class'):
        class_legend(names, colours[:3], 480, style)


def test_colour_bar_alone():
    style = PictureStyle()
    assert row_with_gradient(colour_bar(480, style)) == 256
    with pytest.raises(ValueError, match='colour bar needs'):
        colour_bar(20, style)
