"""Which colour means what: the legend of class colours, the colours of a
boundary probability map and the colour bar that explains them."""
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from .picture_style import PictureStyle


def colormap_code(name: str) -> int:
    """OpenCV's code of the colour map ``name`` (``'jet'``, ``'inferno'``...)."""
    code = getattr(cv2, f'COLORMAP_{str(name).upper()}', None)
    if code is None:
        known = sorted(n[len('COLORMAP_'):].lower() for n in dir(cv2)
                       if n.startswith('COLORMAP_'))
        raise ValueError(f'boundary_cmap={name!r} is not an OpenCV colour map; use None '
                         f'(grey) or one of {known}')
    return code


def boundary_colours(prob: np.ndarray, cmap: Optional[str] = None) -> np.ndarray:
    """Colours of probabilities.

    Args:
        prob: (H, W) float array in [0, 1] (values outside are clipped).
        cmap: None for grey (0 black, 1 white) or an OpenCV colour map name.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    grey = np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8)
    if cmap is None:
        return np.repeat(grey[..., None], 3, axis=2)
    return cv2.cvtColor(cv2.applyColorMap(grey, colormap_code(cmap)), cv2.COLOR_BGR2RGB)


def boundary_panel(boundary, size: tuple, cmap: Optional[str] = None) -> np.ndarray:
    """Picture of a boundary probability map.

    Args:
        boundary: (1, H, W) or (H, W) tensor/array, probabilities in [0, 1].
        size: (height, width) of the panel; the map is resized (bilinear) if
            needed.
        cmap: see :func:`boundary_colours`.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    if isinstance(boundary, torch.Tensor):
        boundary = boundary.detach().float().cpu().numpy()
    prob = np.asarray(boundary, dtype=np.float32)
    prob = prob.reshape(prob.shape[-2:])
    if prob.shape != tuple(size):
        prob = cv2.resize(prob, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return boundary_colours(prob, cmap)


def class_legend(names: Sequence[str], colours: Sequence, width: int,
                 style: PictureStyle) -> np.ndarray:
    """Legend: one colour square and name per class, in rows that wrap at ``width``.

    Args:
        names: class names, in the order to list them.
        colours: one RGB triple per name.
        width: width of the legend in px.

    Returns:
        (height, width, 3) uint8 RGB; height grows with the number of rows.
    """
    if len(names) != len(colours):
        raise ValueError(f'{len(names)} class names but {len(colours)} colours; give '
                         'one colour per class')
    m, s, line = style.margin, style.swatch, style.line_height
    row_h = max(s, line) + m
    entries = [(name, tuple(int(c) for c in colour), s + m // 2 + style.text_width(name))
               for name, colour in zip(names, colours)]
    rows, row, used = [], [], m
    for entry in entries:
        if row and used + entry[2] > width - m:
            rows.append(row)
            row, used = [], m
        row.append(entry)
        used += entry[2] + 2 * m
    if row:
        rows.append(row)
    canvas = style.canvas(m + row_h * len(rows), width)
    for r, row in enumerate(rows):
        x, y = m, m + r * row_h
        for name, colour, entry_w in row:
            sy = y + (max(s, line) - s) // 2
            cv2.rectangle(canvas, (x, sy), (x + s - 1, sy + s - 1), colour, -1)
            cv2.rectangle(canvas, (x, sy), (x + s - 1, sy + s - 1), style.ink, 1)
            style.put_text(canvas, name, x + s + m // 2, y + (max(s, line) - line) // 2)
            x += entry_w + 2 * m
    return canvas


def colour_bar(width: int, style: PictureStyle, cmap: Optional[str] = None,
               ticks: Sequence[float] = (0, 0.25, 0.5, 0.75, 1)) -> np.ndarray:
    """Horizontal colour bar of :func:`boundary_colours` from 0 (left) to 1
    (right), with tick marks and their values below it.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    m, s, line = style.margin, style.swatch, style.line_height
    x0, x1 = 2 * m, width - 2 * m  # the bar's columns; room for the end labels
    if x1 - x0 < 2:
        raise ValueError(f'a colour bar needs more than {4 * m + 1} px, got {width}')
    canvas = style.canvas(m + s + m // 2 + line + m, width)
    gradient = boundary_colours(np.linspace(0, 1, x1 - x0)[None], cmap)
    canvas[m:m + s, x0:x1] = gradient
    cv2.rectangle(canvas, (x0 - 1, m - 1), (x1, m + s), style.ink, 1)
    for value in ticks:
        x = int(round(x0 + value * (x1 - x0 - 1)))
        cv2.line(canvas, (x, m + s), (x, m + s + m // 2), style.ink, 1)
        label = f'{value:g}'
        tx = min(max(x - style.text_width(label) // 2, 0), width - style.text_width(label))
        style.put_text(canvas, label, tx, m + s + m // 2 + 2)
    return canvas
