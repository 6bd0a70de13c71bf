"""Dual-task loss of Gated-SCNN: boundaries of the predicted segmentation
against boundaries of the ground truth."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from ..shape_stream.boundary_targets import near_ignore
from ..shape_stream.image_gradient import sobel_kernels
from ..utils import upsample_bilinear
from .utils import as_two_class, upcast

#: A per-class boundary magnitude above this is "on a boundary" (a hard edge
#: gives magnitudes of 0.05 and more throughout the smoothing footprint;
#: flat regions give 0 up to rounding).
_ON_BOUNDARY = 1e-3


def gumbel_softmax(logits: Tensor, tau: float, dim: int = 1, eps: float = 1e-6) -> Tensor:
    """Soft Gumbel-softmax sample, safe from log(0): the uniform noise is
    clamped to [eps, 1 - eps] before the double log (computed in place)."""
    z = torch.rand_like(logits).clamp_(eps, 1.0 - eps).log_().neg_().log_().neg_()
    z = z.add_(logits)  # in place: one (N, C, H, W) map less
    return F.softmax(z.div_(tau) if tau != 1 else z, dim=dim)


def _replicate(x: Tensor, r: int, dim: int) -> Tensor:
    """Pad ``r`` copies of the edge on both sides of ``dim`` (a concatenation,
    so the backward pass is slicing)."""
    n = x.shape[dim]
    first = x.narrow(dim, 0, 1).expand(*[r if d == dim % x.dim() else -1
                                         for d in range(x.dim())])
    last = x.narrow(dim, n - 1, 1).expand(*[r if d == dim % x.dim() else -1
                                            for d in range(x.dim())])
    return torch.cat([first, x, last], dim=dim)


def boundary_magnitude(maps: Tensor, sigma: float) -> Tensor:
    """Per-channel boundary map ``|grad(G * m)|`` of (N, C, H, W) maps:
    Gaussian (std ``sigma`` px, 0 = none) and Sobel divided by 4, so a hard
    unit step gives 1 right at the step without smoothing. Replicate
    padding: the image frame is no boundary. Two depthwise passes: the rows
    with (derivative, smoothing) kernels, then the columns with
    (smoothing, derivative)."""
    n, c, h, w = maps.shape
    s, d = sobel_kernels(sigma, maps.device, maps.dtype)
    r = s.numel() // 2
    along_w = torch.stack([d, s]).view(2, 1, 1, -1).repeat(c, 1, 1, 1)
    along_h = torch.stack([s, d]).view(2, 1, -1, 1).repeat(c, 1, 1, 1)
    t = F.conv2d(_replicate(maps, r, 3), along_w, groups=c)          # (N, 2C, H, W)
    g = F.conv2d(_replicate(t, r, 2), along_h, groups=2 * c)         # gx, gy interleaved
    g = g.view(n, c, 2, h, w)
    # +eps inside the sqrt keeps the gradient finite where the map is flat
    return torch.sqrt(g.square().sum(dim=2) + 1e-12)


@MODELS.register_module()
class DualTaskLoss(nn.Module):
    """Consistency between segmentation boundaries and ground-truth boundaries.

    For every class k, ``zeta_k = |grad(G * s_k)|`` is the boundary map of
    the class-k channel ``s_k`` of a segmentation (:func:`boundary_magnitude`).
    For the prediction ``s`` is a Gumbel-softmax sample of the logits at
    temperature ``tau`` (a differentiable stand-in for the argmax); for the
    ground truth it is the one-hot label map, giving ``zeta_hat_k``.

    The paper sums ``|zeta - zeta_hat|`` over ``p+``, the pixels where either
    map is non-zero. Here an element (pixel p, class k) is in ``p+`` when
    class k has a boundary within the smoothing footprint of p in the ground
    truth or in the prediction's argmax map (non-zero ``zeta_hat_k(p)``, or
    non-zero boundary map of the argmax one-hot): only the classes that meet
    at a boundary count, so the noise of uninvolved classes adds nothing.
    The sum is divided by ``max(|p+ of the ground truth|, |p+ of the
    prediction|)``: a scale-free loss, whose denominator does not change
    when a boundary of the right length moves, so the loss grows while the
    predicted boundary moves away from the true one.

    Pixels whose footprint reaches an ignored pixel are left out (ignored
    regions create no boundary and get no gradient). Computed in float32
    (float64 inputs stay float64) even under autocast; empty ``p+`` gives 0.
    Heads with one output channel (binary, sigmoid) are read as two-class
    logits ``(0, x)``.

    Works as a ``loss_decode`` entry of any decode head (mmseg's call
    convention: ``loss(seg_logits, seg_label, weight=None, ignore_index=255)``;
    logits at another resolution than the label are enlarged bilinearly).

    Args:
        tau: Gumbel-softmax temperature (0.5, as in the official code; the
            paper gives no value). Lower is closer to the argmax.
        sigma: std of the Gaussian smoothing in pixels; 0 disables it.
        loss_weight: factor on the loss (paper: 1).
        loss_name: key in the loss dict, must start with ``loss_``.

    Forward: seg_logits (N, C, h, w), seg_label (N, H, W) -> scalar.
    """

    def __init__(self, tau: float = 0.5, sigma: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_dual_task'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        if tau <= 0:
            raise ValueError(f'DualTaskLoss tau must be > 0, got {tau}')
        if sigma < 0:
            raise ValueError(f'DualTaskLoss sigma must be >= 0 pixels, got {sigma}')
        self.tau = tau
        self.sigma = sigma
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def footprint(self) -> int:
        """Half-width in pixels of the window that decides one pixel's magnitude."""
        return 1 + (max(1, math.ceil(2 * self.sigma)) if self.sigma > 0 else 0)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight: Tensor = None,
                ignore_index: int = 255, **kwargs) -> Tensor:
        if seg_logits.dim() != 4 or seg_label.dim() != 3:
            raise ValueError(f'DualTaskLoss expects seg_logits (N, C, H, W) and seg_label '
                             f'(N, H, W), got {tuple(seg_logits.shape)} and '
                             f'{tuple(seg_label.shape)}')
        with torch.autocast(device_type=seg_logits.device.type, enabled=False):
            logits = as_two_class(upcast(seg_logits))
            if logits.shape[-2:] != seg_label.shape[-2:]:
                logits = upsample_bilinear(logits, seg_label.shape[-2:])
            c = logits.shape[1]
            zeta = boundary_magnitude(gumbel_softmax(logits, self.tau), self.sigma)
            with torch.no_grad():
                classes = torch.arange(c, device=logits.device).view(1, c, 1, 1)
                valid = seg_label != ignore_index
                gt = torch.where(valid, seg_label, 0).unsqueeze(1)
                pred = logits.argmax(dim=1, keepdim=True)
                hard = torch.cat([gt == classes, pred == classes], dim=1).to(logits.dtype)
                zeta_gt, zeta_pred = boundary_magnitude(hard, self.sigma).split(c, dim=1)
                keep = ~near_ignore(seg_label, ignore_index, self.footprint())
                keep = keep.to(logits.dtype)
                if weight is not None:
                    keep = keep * weight.to(logits.dtype).view_as(keep)
                on_gt = (zeta_gt > _ON_BOUNDARY) * keep
                on_pred = (zeta_pred > _ON_BOUNDARY) * keep
                on_either = torch.maximum(on_gt, on_pred)
                norm = torch.maximum(on_gt.sum(), on_pred.sum()).clamp(min=1.0)
            loss = ((zeta - zeta_gt).abs() * on_either).sum() / norm
            return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name
