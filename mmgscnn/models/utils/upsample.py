"""Bilinear enlargement whose backward pass needs no atomic additions.

``F.interpolate(mode='bilinear')`` back-propagates on CUDA by scattering
every output gradient into its four source pixels with atomic additions;
for a large factor many outputs share a source, so the backward kernel
serialises. For an integer factor ``s`` and ``align_corners=False`` every
output row (column) ``s * i + j`` is a fixed blend of source rows ``i - 1``,
``i``, ``i + 1`` (borders repeat the edge row, as ``F.interpolate`` clamps
there), so the enlargement is ``s`` weighted sums of shifted copies per
axis: the same values, and a backward pass of plain element-wise products.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _phase_offsets(s: int) -> list:
    """Source offset (in source pixels, in (-0.5, 0.5)) of output phase j of
    an enlargement by ``s`` with half-pixel centres: ``(j + 0.5) / s - 0.5``."""
    return [(j + 0.5) / s - 0.5 for j in range(s)]


def _enlarge_axis(x: Tensor, s: int, dim: int) -> Tensor:
    """Enlarge ``x`` by the integer factor ``s`` along axis ``dim`` (>= 0)."""
    if s == 1:
        return x
    n = x.shape[dim]
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    prev = torch.cat([first, x.narrow(dim, 0, n - 1)], dim=dim) if n > 1 else x
    nxt = torch.cat([x.narrow(dim, 1, n - 1), last], dim=dim) if n > 1 else x
    phases = [torch.lerp(x, prev, -d) if d < 0 else torch.lerp(x, nxt, d)
              for d in _phase_offsets(s)]
    out = torch.stack(phases, dim=dim + 1)  # (..., n, s, ...)
    shape = list(x.shape)
    shape[dim] = n * s
    return out.reshape(shape)


def enlarge_bilinear(x: Tensor, s_h: int, s_w: int) -> Tensor:
    """(N, C, h, w) -> (N, C, s_h * h, s_w * w), bilinear with half-pixel
    centres (``align_corners=False``), as blends of shifted copies. A
    channels-last input is processed as (N, h, w, C) and stays channels-last."""
    if x.dim() == 4 and x.shape[1] > 1 and not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last):
        nhwc = x.permute(0, 2, 3, 1)
        return _enlarge_axis(_enlarge_axis(nhwc, s_h, 1), s_w, 2).permute(0, 3, 1, 2)
    return _enlarge_axis(_enlarge_axis(x, s_h, x.dim() - 2), s_w, x.dim() - 1)


def upsample_bilinear(x: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of (N, C, h, w) to ``size`` (H, W), equal to
    ``F.interpolate(x, size, mode='bilinear', align_corners=...)``.

    On CUDA, an enlargement by integer factors with ``align_corners=False``
    goes through :func:`enlarge_bilinear`; everything else (other devices,
    where ``F.interpolate``'s backward has no atomics to avoid, shrinking,
    fractional factors, ``align_corners=True``) calls ``F.interpolate``.
    """
    h, w = x.shape[-2:]
    H, W = int(size[0]), int(size[1])
    if (H, W) == (h, w):
        return x
    if (not _blends_pay_off(x) or align_corners or H % h or W % w or H < h or W < w):
        return F.interpolate(x, size=(H, W), mode='bilinear', align_corners=align_corners)
    return enlarge_bilinear(x, H // h, W // w)


def _blends_pay_off(x: Tensor) -> bool:
    """Whether the blend path is used for ``x``: on CUDA (atomics to avoid)."""
    return x.device.type == 'cuda'
