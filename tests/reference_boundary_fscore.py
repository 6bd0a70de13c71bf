"""Frozen copy of BoundaryFScore's per-image counts before the CPU distance path
(issue 23): boundary maps dilated by a Euclidean disk of horizontal max-pools.
The test oracle of tests/test_boundary_fscore_fast.py; do not edit."""
import math

import torch
import torch.nn.functional as F


def class_boundaries(label, valid):
    boundary = torch.zeros_like(valid)
    vert = valid[1:, :] & valid[:-1, :] & (label[1:, :] != label[:-1, :])
    boundary[1:, :] |= vert
    boundary[:-1, :] |= vert
    horiz = valid[:, 1:] & valid[:, :-1] & (label[:, 1:] != label[:, :-1])
    boundary[:, 1:] |= horiz
    boundary[:, :-1] |= horiz
    return boundary


def disk_half_widths(radius):
    if float(radius).is_integer():
        r = int(radius)
        return [(dy, math.isqrt(r * r - dy * dy)) for dy in range(r + 1)]
    return [(dy, int(math.floor(math.sqrt(radius * radius - dy * dy) + 1e-9)))
            for dy in range(int(math.floor(radius)) + 1)]


def disk_dilate(mask, radius):
    if radius == 0 or mask.numel() == 0:
        return mask.clone()
    x = mask.unsqueeze(1).to(torch.float32)
    out = torch.zeros_like(x)
    for dy, half in disk_half_widths(radius):
        row = F.max_pool2d(x, (1, 2 * half + 1), stride=1, padding=(0, half)) \
            if half > 0 else x
        if dy == 0:
            out = torch.maximum(out, row)
        else:
            out[..., dy:, :] = torch.maximum(out[..., dy:, :], row[..., :-dy, :])
            out[..., :-dy, :] = torch.maximum(out[..., :-dy, :], row[..., dy:, :])
    return out[:, 0] > 0


def image_counts(pred, gt, num_classes, radii, ignore_index=255):
    """(T, C, 4) int64: matched predicted, total predicted, matched GT, total
    GT boundary pixels per radius and class."""
    gt = gt.long()
    pred = pred.long()
    gt_valid = gt != ignore_index
    pred = torch.where(gt_valid, pred, torch.full_like(pred, ignore_index))
    pred_valid = pred != ignore_index
    classes = torch.arange(num_classes)[:, None, None]
    gt_b = class_boundaries(gt, gt_valid)[None] & (gt[None] == classes)
    pred_b = class_boundaries(pred, pred_valid)[None] & (pred[None] == classes)
    counts = torch.zeros(len(radii), num_classes, 4, dtype=torch.long)
    both = torch.cat([gt_b, pred_b])
    for i, radius in enumerate(radii):
        dilated = disk_dilate(both, radius)
        near_gt, near_pred = dilated[:num_classes], dilated[num_classes:]
        counts[i, :, 0] = (pred_b & near_gt).sum((1, 2))
        counts[i, :, 1] = pred_b.sum((1, 2))
        counts[i, :, 2] = (gt_b & near_pred).sum((1, 2))
        counts[i, :, 3] = gt_b.sum((1, 2))
    return counts
