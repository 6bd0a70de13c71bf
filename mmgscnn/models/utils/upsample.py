"""Bilinear enlargement in one kernel whose backward pass needs no atomic
additions.

``F.interpolate(mode='bilinear')`` back-propagates on CUDA by scattering
every output gradient into its four source pixels with atomic additions;
for a large factor many outputs share a source, so the backward kernel
serialises. For an integer factor ``s`` and ``align_corners=False`` the
output pixel ``s * i + j`` is a fixed blend of source pixels ``i - 1, i,
i + 1``: bilinear enlargement is a depthwise transposed convolution with
stride ``s`` and a fixed separable "tent" kernel of ``2s`` taps (``2s - 1``
for odd ``s``). Its backward pass is a plain strided convolution (a gather,
no atomics). ``F.interpolate`` clamps source coordinates at the borders,
which equals repeating the edge pixel: the source is padded by one pixel
(replicate; a small pass at the source resolution) and the transposed
convolution's padding crops the extra ``s`` outputs on each side.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .constants import cached_constant


def tent_taps(s: int) -> list:
    """Taps of the 1-D bilinear enlargement by ``s`` as a transposed
    convolution with padding ``s // 2``: tap ``k`` weighs a source pixel at
    distance ``(k - s // 2 + 0.5) / s - 0.5`` source pixels from an output
    pixel, ``max(0, 1 - |distance|)``; ``2s`` taps (``2s - 1`` for odd ``s``,
    whose last one would be 0)."""
    return [max(0.0, 1.0 - abs((k - s // 2 + 0.5) / s - 0.5)) for k in range(2 * s - s % 2)]


def _tent_weight(s_h: int, s_w: int, channels: int, device, dtype) -> Tensor:
    """The (C, 1, K_h, K_w) depthwise weight, made once per device and dtype
    (a constant: no gradient; :func:`.constants.cached_constant`)."""
    def build():
        taps_h = torch.tensor(tent_taps(s_h), dtype=torch.float64)
        taps_w = torch.tensor(tent_taps(s_w), dtype=torch.float64)
        weight = (taps_h[:, None] * taps_w[None, :]).expand(channels, 1, -1, -1)
        return weight.to(device=device, dtype=dtype).contiguous()

    return cached_constant(('tent_weight', s_h, s_w, channels, device, dtype), build)


def enlarge_bilinear(x: Tensor, s_h: int, s_w: int) -> Tensor:
    """(N, C, h, w) -> (N, C, s_h * h, s_w * w), bilinear with half-pixel
    centres (``align_corners=False``, borders clamped as ``F.interpolate``
    does), as one depthwise transposed convolution in ``x``'s dtype (also
    under autocast). A channels-last input gives a channels-last output."""
    c = x.shape[1]
    weight = _tent_weight(s_h, s_w, c, x.device, x.dtype)
    with torch.autocast(x.device.type, enabled=False):
        padded = F.pad(x, (1, 1, 1, 1), mode='replicate')
        return F.conv_transpose2d(padded, weight, stride=(s_h, s_w),
                                  padding=(s_h + s_h // 2, s_w + s_w // 2), groups=c)


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
    """Whether :func:`enlarge_bilinear` is used for ``x``: on CUDA (atomics
    to avoid)."""
    return x.device.type == 'cuda'
