"""mmgscnn.visualization.panel_picture: upscaling for readable panels and
the errors of compose_panels."""
import numpy as np
import pytest

from mmgscnn.visualization import PictureStyle, compose_panels, upscale, upscale_factor


def test_upscale_factor_makes_panels_readable_and_never_shrinks():
    assert upscale_factor(160) == 3 and upscale_factor(32) == 15
    assert upscale_factor(479) == 2 and upscale_factor(480) == 1
    assert upscale_factor(2048) == 1 and upscale_factor(100, min_width=50) == 1
    labels = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(upscale(labels, 2, nearest=True),
                                  [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    with pytest.raises(ValueError, match='positive'):
        upscale_factor(0)


def test_compose_panels_names_bad_panels():
    style = PictureStyle()
    panel = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match='every panel must be'):
        compose_panels([('a', panel), ('b', panel[:5])], [], style)
    with pytest.raises(ValueError, match='unique'):
        compose_panels([('a', panel), ('a', panel)], [], style)
    with pytest.raises(ValueError, match='spans panels'):
        compose_panels([('a', panel)], [('k', 0, 1, lambda w: panel)], style)
