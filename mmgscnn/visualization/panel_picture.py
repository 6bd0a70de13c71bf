"""One picture of equally sized panels side by side, each under its title,
with colour keys (legend, colour bar) below the panels they explain."""
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence, Tuple

import cv2
import numpy as np

from .picture_style import MIN_PANEL_WIDTH, PictureStyle

# (x, y, width, height) in px of a region of the picture.
Box = Tuple[int, int, int, int]


def upscale_factor(width: int, min_width: int = MIN_PANEL_WIDTH) -> int:
    """Smallest whole factor that makes ``width`` at least ``min_width``
    (1 for images that are wide enough; they are never shrunk)."""
    if width < 1 or min_width < 1:
        raise ValueError(f'widths must be positive, got width={width}, '
                         f'min_width={min_width}')
    return max(1, math.ceil(min_width / width))


def upscale(array: np.ndarray, factor: int, nearest: bool = False) -> np.ndarray:
    """(H, W[, C]) -> (H * factor, W * factor[, C]); pixel copies when
    ``nearest`` (label maps), else bilinear (images)."""
    if factor == 1:
        return array
    if nearest:
        return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)
    h, w = array.shape[:2]
    return cv2.resize(array, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR)


@dataclass
class PanelPicture:
    """A composed picture and where its parts lie.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        panels: title -> box of the panel (without its title line).
        keys: name -> box of a colour key (e.g. ``'legend'``, ``'colour bar'``).
        legend: class names the legend lists, in order (empty without one).
    """
    image: np.ndarray
    panels: Dict[str, Box] = field(default_factory=dict)
    keys: Dict[str, Box] = field(default_factory=dict)
    legend: Tuple[str, ...] = ()


def compose_panels(panels: Sequence[Tuple[str, np.ndarray]],
                   keys: Sequence[Tuple[str, int, int, Callable[[int], np.ndarray]]],
                   style: PictureStyle) -> PanelPicture:
    """Lay panels out left to right, titles above, keys below.

    Args:
        panels: (title, (h, w, 3) uint8 RGB) pairs, all of one size; titles
            must be unique.
        keys: (name, first, last, draw) tuples: ``draw(width)`` returns the
            key as a (height, width, 3) RGB array, placed under panels
            ``first`` to ``last`` (indices into ``panels``, inclusive) and
            as wide as them together.
        style: text size and margins.

    Returns:
        The picture with the boxes of its panels and keys.
    """
    if not panels:
        raise ValueError('no panels to draw')
    titles = [title for title, _ in panels]
    if len(set(titles)) != len(titles):
        raise ValueError(f'panel titles must be unique, got {titles}')
    h, w = panels[0][1].shape[:2]
    for title, panel in panels:
        if panel.shape != (h, w, 3):
            raise ValueError(f'panel {title!r} has shape {panel.shape}; every panel must '
                             f'be ({h}, {w}, 3) like {titles[0]!r}')
    gap = style.margin
    top = gap + style.line_height + gap // 2
    xs = [gap + i * (w + gap) for i in range(len(panels))]
    drawn_keys = []
    for name, first, last, draw in keys:
        if not 0 <= first <= last < len(panels):
            raise ValueError(f'key {name!r} spans panels {first}..{last}, but there are '
                             f'{len(panels)}')
        span = xs[last] + w - xs[first]
        key = draw(span)
        if key.ndim != 3 or key.shape[1:] != (span, 3):
            raise ValueError(f'key {name!r} has shape {key.shape}; expected (height, '
                             f'{span}, 3)')
        drawn_keys.append((name, xs[first], key))
    footer = max((key.shape[0] for _, _, key in drawn_keys), default=0)
    canvas = style.canvas(top + h + footer + gap, xs[-1] + w + gap)
    boxes = {}
    for (title, panel), x in zip(panels, xs):
        style.put_text(canvas, title, x, gap)
        canvas[top:top + h, x:x + w] = panel
        boxes[title] = (x, top, w, h)
    key_boxes = {}
    for name, x, key in drawn_keys:
        canvas[top + h:top + h + key.shape[0], x:x + key.shape[1]] = key
        key_boxes[name] = (x, top + h, key.shape[1], key.shape[0])
    return PanelPicture(image=canvas, panels=boxes, keys=key_boxes)
