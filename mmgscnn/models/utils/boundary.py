"""Boundary maps derived from label maps, on the labels' device.

A pixel is a boundary pixel when a valid neighbour within ``radius`` pixels
(Chebyshev distance, i.e. a (2r+1)x(2r+1) window) carries another valid label.
Pixels labelled ``ignore_index`` are never boundary and never count as a
different neighbour; neighbours outside the image do not exist, so the image
frame is not a boundary. Every label counts, including 0.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


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
    if seg_label.dim() != 3:
        raise ValueError(f'seg_label must be (N, H, W), got {tuple(seg_label.shape)}')
    if radius < 1:
        raise ValueError(f'radius must be >= 1 pixel, got {radius}')
    valid = (seg_label != ignore_index).unsqueeze(1)
    # float32 holds every integer label below 2**24 exactly.
    label = seg_label.unsqueeze(1).float()
    k = 2 * radius + 1
    # Largest / smallest valid label around each pixel. Ignored pixels are
    # pushed out of reach (-inf for the max, +inf for the min); max_pool2d pads
    # with -inf, so pixels outside the frame never take part either.
    neg_inf = torch.full_like(label, float('-inf'))
    hi = F.max_pool2d(torch.where(valid, label, neg_inf), k, 1, radius)
    lo = -F.max_pool2d(torch.where(valid, -label, neg_inf), k, 1, radius)
    boundary = valid & ((hi > label) | (lo < label))
    return boundary.to(label.dtype), valid
