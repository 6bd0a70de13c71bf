"""Frozen copy of the boundary losses as they were before the issue-21
rewrites (commit 7823df3): the oracle the rewritten losses are checked
against in ``test_loss_rewrites_equivalence.py``. Test-only; not imported by
the package. Functional forms of the same code, so that a later change to
``mmgscnn`` cannot change the oracle."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.losses import cross_entropy

_ON_BOUNDARY = 1e-3


def upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def as_two_class(logits: Tensor) -> Tensor:
    if logits.shape[1] != 1:
        return logits
    return torch.cat([torch.zeros_like(logits), logits], dim=1)


def sobel_kernels(sigma: float, device, dtype) -> tuple:
    """(smooth, derivative): [1, 2, 1] / 4 and [-1, 0, 1], each convolved
    (numpy, float64) with a normalised Gaussian of radius ceil(2 sigma)."""
    import numpy as np
    s, d = np.array([1.0, 2.0, 1.0]) / 4, np.array([-1.0, 0.0, 1.0])
    if sigma > 0:
        t = np.arange(-max(1, math.ceil(2 * sigma)), max(1, math.ceil(2 * sigma)) + 1)
        g = np.exp(-t * t / (2.0 * sigma * sigma))
        g /= g.sum()
        s, d = np.convolve(g, s), np.convolve(g, d)
    return (torch.tensor(s, device=device, dtype=dtype),
            torch.tensor(d, device=device, dtype=dtype))


def gumbel_softmax(logits: Tensor, tau: float, dim: int = 1, eps: float = 1e-6) -> Tensor:
    z = torch.rand_like(logits).clamp_(eps, 1.0 - eps).log_().neg_().log_().neg_()
    z = z.add_(logits)
    return F.softmax(z.div_(tau) if tau != 1 else z, dim=dim)


def _replicate(x: Tensor, r: int, dim: int) -> Tensor:
    n = x.shape[dim]
    first = x.narrow(dim, 0, 1).expand(*[r if d == dim % x.dim() else -1
                                         for d in range(x.dim())])
    last = x.narrow(dim, n - 1, 1).expand(*[r if d == dim % x.dim() else -1
                                            for d in range(x.dim())])
    return torch.cat([first, x, last], dim=dim)


def boundary_magnitude(maps: Tensor, sigma: float) -> Tensor:
    n, c, h, w = maps.shape
    s, d = sobel_kernels(sigma, maps.device, maps.dtype)
    r = s.numel() // 2
    along_w = torch.stack([d, s]).view(2, 1, 1, -1).repeat(c, 1, 1, 1)
    along_h = torch.stack([s, d]).view(2, 1, -1, 1).repeat(c, 1, 1, 1)
    t = F.conv2d(_replicate(maps, r, 3), along_w, groups=c)
    g = F.conv2d(_replicate(t, r, 2), along_h, groups=2 * c)
    g = g.view(n, c, 2, h, w)
    return torch.sqrt(g.square().sum(dim=2) + 1e-12)


def near_ignore(seg_label: Tensor, ignore_index: int, radius: int) -> Tensor:
    ignored = (seg_label == ignore_index).unsqueeze(1).to(torch.float32)
    return F.max_pool2d(ignored, 2 * radius + 1, 1, radius) > 0


def label_boundaries(seg_label: Tensor, ignore_index: int = 255, radius: int = 1) -> tuple:
    valid = (seg_label != ignore_index).unsqueeze(1)
    label = seg_label.unsqueeze(1).float()
    k = 2 * radius + 1
    neg_inf = torch.full_like(label, float('-inf'))
    hi = F.max_pool2d(torch.where(valid, label, neg_inf), k, 1, radius)
    lo = -F.max_pool2d(torch.where(valid, -label, neg_inf), k, 1, radius)
    boundary = valid & ((hi > label) | (lo < label))
    return boundary.to(label.dtype), valid


def boundary_target(seg_label: Tensor, ignore_index: int = 255, radius: int = 1,
                    edge_map: Tensor = None) -> tuple:
    valid = ~near_ignore(seg_label, ignore_index, radius)
    if edge_map is None:
        target = label_boundaries(seg_label, ignore_index, radius)[0]
    else:
        target = (edge_map > 0).to(torch.float32)
    return target * valid, valid


def dual_task_loss(seg_logits, seg_label, weight=None, ignore_index=255, tau=0.5,
                   sigma=1.0, loss_weight=1.0):
    footprint = 1 + (max(1, math.ceil(2 * sigma)) if sigma > 0 else 0)
    with torch.autocast(device_type=seg_logits.device.type, enabled=False):
        logits = as_two_class(upcast(seg_logits))
        if logits.shape[-2:] != seg_label.shape[-2:]:
            logits = F.interpolate(logits, size=seg_label.shape[-2:], mode='bilinear',
                                   align_corners=False)
        c = logits.shape[1]
        zeta = boundary_magnitude(gumbel_softmax(logits, tau), sigma)
        with torch.no_grad():
            classes = torch.arange(c, device=logits.device).view(1, c, 1, 1)
            valid = seg_label != ignore_index
            gt = torch.where(valid, seg_label, 0).unsqueeze(1)
            pred = logits.argmax(dim=1, keepdim=True)
            hard = torch.cat([gt == classes, pred == classes], dim=1).to(logits.dtype)
            zeta_gt, zeta_pred = boundary_magnitude(hard, sigma).split(c, dim=1)
            keep = ~near_ignore(seg_label, ignore_index, footprint)
            keep = keep.to(logits.dtype)
            if weight is not None:
                keep = keep * weight.to(logits.dtype).view_as(keep)
            on_gt = (zeta_gt > _ON_BOUNDARY) * keep
            on_pred = (zeta_pred > _ON_BOUNDARY) * keep
            on_either = torch.maximum(on_gt, on_pred)
            norm = torch.maximum(on_gt.sum(), on_pred.sum()).clamp(min=1.0)
        loss = ((zeta - zeta_gt).abs() * on_either).sum() / norm
        return loss_weight * loss


def boundary_bce_loss(logits, target, valid=None, loss_weight=1.0):
    logits = upcast(logits)
    target = target.to(logits.dtype)
    valid = torch.ones_like(target) if valid is None else valid.to(target.dtype)
    pos = (target * valid).sum()
    total = valid.sum()
    neg = total - pos
    total = total.clamp(min=1.0)
    weight = torch.where(target > 0.5, neg / total, pos / total) * valid
    loss = F.binary_cross_entropy_with_logits(logits, target, weight, reduction='sum')
    return loss_weight * loss / total


def attention_loss(seg_logits, seg_label, weight=None, ignore_index=255,
                   boundary_logits=None, threshold=0.8, radius=1, loss_weight=1.0):
    seg_logits = as_two_class(seg_logits)
    if seg_logits.shape[-2:] != seg_label.shape[-2:]:
        seg_logits = F.interpolate(seg_logits, size=seg_label.shape[-2:], mode='bilinear',
                                   align_corners=False)
    with torch.no_grad():
        if boundary_logits is None:
            selected = label_boundaries(seg_label, ignore_index, radius)[0][:, 0] > 0
        else:
            if boundary_logits.shape[-2:] != seg_label.shape[-2:]:
                boundary_logits = F.interpolate(boundary_logits, size=seg_label.shape[-2:],
                                                mode='bilinear', align_corners=False)
            selected = (torch.sigmoid(boundary_logits.float()) > threshold)[:, 0]
        selected = selected & (seg_label != ignore_index)
        pixel_weight = selected.to(upcast(seg_logits).dtype)
        if weight is not None:
            pixel_weight = pixel_weight * weight
        count = pixel_weight.sum()
    loss = cross_entropy(upcast(seg_logits), seg_label, weight=pixel_weight,
                         reduction='none', ignore_index=ignore_index)
    return loss_weight * loss.sum() / count.clamp(min=1.0)
