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


def near_ignore(seg_label: Tensor, ignore_index: int, radius: int) -> Tensor:
    """(N, H, W) labels -> (N, 1, H, W) bool, True within ``radius`` pixels
    (Chebyshev) of a pixel labelled ``ignore_index`` (that pixel included)."""
    ignored = (seg_label == ignore_index).unsqueeze(1).to(torch.float32)
    return F.max_pool2d(ignored, 2 * radius + 1, 1, radius) > 0


def boundary_target(seg_label: Tensor, ignore_index: int = 255, radius: int = 1,
                    edge_map: Tensor = None) -> tuple:
    """Target and validity mask for the boundary BCE.

    The target is :func:`label_boundaries` of the labels, or ``edge_map``
    (N, 1, H, W), e.g. mmseg's ``GenerateEdge`` output, when given. Pixels
    within ``radius`` of an ignored pixel are not valid: whether a class
    meets another one under an ignored region (ego vehicle, out-of-ROI,
    padding) is unknown, so they are neither boundary nor background.

    Returns:
        target: (N, 1, H, W) float in {0, 1}.
        valid: (N, 1, H, W) bool.
    """
    valid = ~near_ignore(seg_label, ignore_index, radius)
    if edge_map is None:
        target = label_boundaries(seg_label, ignore_index, radius)[0]
    else:
        target = (edge_map > 0).to(torch.float32)
    return target * valid, valid
