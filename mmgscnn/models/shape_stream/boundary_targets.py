"""Boundary maps derived from label maps, on the labels' device.

A pixel is a boundary pixel when a valid neighbour within ``radius`` pixels
(Chebyshev distance, i.e. a (2r+1)x(2r+1) window) carries another valid label.
Pixels labelled ``ignore_index`` are never boundary and never count as a
different neighbour; neighbours outside the image do not exist, so the image
frame is not a boundary. Every label counts, including 0.

One max-pooling pass gives all three window statistics (largest and
smallest valid label, any ignored pixel), from a 3-channel float map.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


#: Channel 1 of the window maps on an ignored pixel: above any difference
#: of two labels below 2**24 (exact in float32).
_IGNORED = float(2 ** 25)


def _window_max(seg_label: Tensor, ignore_index: int, radius: int) -> tuple:
    """(N, H, W) labels -> (maps, pooled), both (N, 3, H, W) float32.

    ``maps`` holds (label, 0, -label) on valid pixels and (-inf, 2**25,
    -inf) on ignored ones; ``pooled`` is its max over the (2r+1)x(2r+1)
    window (outside the frame counts as -inf): the largest valid label,
    whether an ignored pixel is in the window (2**25, else 0), and minus the
    smallest valid label. float32 holds every integer label below 2**24
    exactly.
    """
    if seg_label.dim() != 3:
        raise ValueError(f'seg_label must be (N, H, W), got {tuple(seg_label.shape)}')
    if radius < 1:
        raise ValueError(f'radius must be >= 1 pixel, got {radius}')
    # (1, 0, -1) and (-inf, 2**25, -inf), made on the device (no host copy)
    scale = torch.arange(1, -2, -1, device=seg_label.device,
                         dtype=torch.float32).view(1, 3, 1, 1)
    fill = torch.where(scale == 0, _IGNORED, float('-inf'))
    label = seg_label.unsqueeze(1)
    maps = torch.where(label != ignore_index, label * scale, fill)
    return maps, F.max_pool2d(maps, 2 * radius + 1, 1, radius)


def _differs(maps: Tensor, pooled: Tensor) -> Tensor:
    """(N, 1, H, W) bool: a valid label in the window differs from the
    pixel's own (True on ignored pixels next to valid ones: mask them)."""
    return (pooled[:, ::2] > maps[:, ::2]).any(dim=1, keepdim=True)


def _differs_without_ignored(pooled: Tensor, dtype: torch.dtype = torch.bool) -> Tensor:
    """(N, 1, H, W) in ``dtype``, 1 where the window holds two different
    valid labels and no ignored pixel: its largest minus its smallest valid
    label (at least 0 when it holds a valid one, -inf when none) exceeds
    channel 1 (0, or 2**25 with an ignored pixel). Two passes, a sum and a
    comparison that writes ``dtype`` directly."""
    spread = pooled[:, :1] + pooled[:, 2:]
    if dtype == torch.bool:
        return spread > pooled[:, 1:2]
    return torch.gt(spread, pooled[:, 1:2], out=torch.empty_like(spread, dtype=dtype))


def boundary_mask(seg_label: Tensor, ignore_index: int = 255, radius: int = 1) -> Tensor:
    """(N, H, W) labels -> (N, 1, H, W) bool, True on the boundary pixels
    (valid pixels only) of :func:`label_boundaries`."""
    maps, pooled = _window_max(seg_label, ignore_index, radius)
    return _differs(maps, pooled) & (maps[:, 1:2] == 0)


def label_boundaries(seg_label: Tensor, ignore_index: int = 255,
                     radius: int = 1) -> tuple:
    """Boundary target and validity mask of a batch of label maps.

    Args:
        seg_label: (N, H, W) integer labels.
        ignore_index: label of pixels without ground truth.
        radius: neighbourhood radius in pixels (>= 1). A border between two
            regions gives a band ``2 * radius`` pixels wide, ``radius`` on
            each side.

    Returns:
        boundary: (N, 1, H, W) float, 1 on boundary pixels, else 0.
        valid: (N, 1, H, W) bool, False where the label is ``ignore_index``.
    """
    maps, pooled = _window_max(seg_label, ignore_index, radius)
    valid = maps[:, 1:2] == 0
    return (_differs(maps, pooled) & valid).to(torch.float32), valid


def near_ignore(seg_label: Tensor, ignore_index: int, radius: int) -> Tensor:
    """(N, H, W) labels -> (N, 1, H, W) bool, True within ``radius`` pixels
    (Chebyshev) of a pixel labelled ``ignore_index`` (that pixel included)."""
    ignored = (seg_label == ignore_index).unsqueeze(1).to(torch.float32)
    return F.max_pool2d(ignored, 2 * radius + 1, 1, radius) > 0


def boundary_target(seg_label: Tensor, ignore_index: int = 255, radius: int = 1,
                    edge_map: Tensor = None, dtype: torch.dtype = torch.float32) -> tuple:
    """Target and validity mask for the boundary BCE.

    The target is :func:`label_boundaries` of the labels, or ``edge_map``
    (N, 1, H, W), e.g. mmseg's ``GenerateEdge`` output, when given. Pixels
    within ``radius`` of an ignored pixel are not valid: whether a class
    meets another one under an ignored region (ego vehicle, out-of-ROI,
    padding) is unknown, so they are neither boundary nor background; the
    target is 0 there. About 7 full-resolution passes, one of them a
    max-pooling.

    Returns:
        target: (N, 1, H, W) in {0, 1}, ``dtype`` (float32; ``torch.bool``
            saves a conversion pass).
        valid: (N, 1, H, W) bool.
    """
    maps, pooled = _window_max(seg_label, ignore_index, radius)
    valid = pooled[:, 1:2] <= 0
    if edge_map is None:  # zero wherever an ignored pixel is in the window
        return _differs_without_ignored(pooled, dtype), valid
    return ((edge_map > 0) & valid).to(dtype), valid
