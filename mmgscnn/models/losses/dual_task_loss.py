"""Dual-task loss of Gated-SCNN: boundaries of the predicted segmentation
against boundaries of the ground truth."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmseg.models.utils import resize
from mmseg.registry import MODELS
from ..utils.boundary import label_boundaries
from ..utils.image_gradient import sobel
from .utils import upcast


def gumbel_softmax(logits: Tensor, tau: float, dim: int = 1, eps: float = 1e-6) -> Tensor:
    """Soft Gumbel-softmax sample, safe from log(0): the uniform noise is
    clamped to [eps, 1 - eps] before the double log (computed in place)."""
    z = torch.rand_like(logits).clamp_(eps, 1.0 - eps).log_().neg_().log_().neg_()
    z = z.add_(logits)  # in place: one (N, C, H, W) map less
    return F.softmax(z.div_(tau) if tau != 1 else z, dim=dim)


@MODELS.register_module()
class DualTaskLoss(nn.Module):
    """Consistency between segmentation boundaries and ground-truth boundaries.

    For every class k, the boundary map of a (soft) one-hot segmentation is
    the magnitude of its spatial gradient, ``zeta_k = |grad(G * s_k)|``
    (Sobel, divided by 4 so that a hard step gives 1, after an optional
    Gaussian ``G``; replicate padding, so the image frame is no boundary).
    The prediction's ``s`` is a Gumbel-softmax sample of the logits
    (temperature ``tau``), so the loss is differentiable; the ground truth's
    is its one-hot map. With ``d = sum_k |zeta_k - zeta_hat_k|`` per pixel,

        loss = 0.5 * (mean of d over ground-truth boundary pixels
                      + mean of d over predicted boundary pixels),

    the paper's sum over the boundary pixels p+ of either map. Boundary
    pixels are those of the label maps (ground truth, and argmax of the
    logits), found as in :func:`label_boundaries` with radius 1, so no
    threshold is involved and the loss grows steadily while the predicted
    boundary moves away (until the smoothed maps no longer overlap). Pixels
    whose gradient window touches an ignored pixel are left out, so ignored
    regions create no boundary and get no gradient. Computed in float32
    (float64 inputs stay float64) even under autocast; every denominator is
    clamped, so all-ignore and single-class crops give 0, never NaN.

    Works as a ``loss_decode`` entry of any decode head (mmseg's call
    convention: ``loss(seg_logits, seg_label, weight=None, ignore_index=255)``;
    logits at another resolution than the label are resized bilinearly).

    Args:
        tau: Gumbel-softmax temperature (paper: 1).
        sigma: std of the Gaussian smoothing in pixels; 0 disables it.
        loss_weight: factor on the loss (paper: 1).
        loss_name: key in the loss dict, must start with ``loss_``.
        class_chunk: classes whose boundary maps are computed together; the
            maps are recomputed in the backward pass, so memory holds the
            softmax sample plus one chunk's maps, not all classes' maps.

    Forward: seg_logits (N, C, h, w), seg_label (N, H, W) -> scalar.
    """

    def __init__(self, tau: float = 1.0, sigma: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_dualtask', class_chunk: int = 4):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        if tau <= 0:
            raise ValueError(f'DualTaskLoss tau must be > 0, got {tau}')
        self.tau = tau
        self.class_chunk = max(1, int(class_chunk))
        self.sigma = sigma
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def _boundary_magnitude(self, soft_onehot: Tensor) -> Tensor:
        """(N, C, H, W) -> per-class boundary magnitude (N, C, H, W)."""
        gx, gy = sobel(soft_onehot, self.sigma)
        # +eps inside the sqrt keeps the gradient finite where the map is flat
        return torch.sqrt(gx * gx + gy * gy + 1e-12)

    def _boundary_l1(self, soft_pred: Tensor, index: Tensor, first: int) -> Tensor:
        """Per-pixel ``sum_k |zeta_k(soft_pred) - zeta_k(one-hot GT)|`` (N, H, W)
        for the classes ``first .. first + soft_pred.shape[1] - 1``;
        ``index`` (N, 1, H, W) holds the GT class of every pixel."""
        classes = torch.arange(first, first + soft_pred.shape[1], device=index.device)
        onehot = (index == classes.view(1, -1, 1, 1)).to(soft_pred.dtype)
        with torch.no_grad():
            zeta_gt = self._boundary_magnitude(onehot)
        return (self._boundary_magnitude(soft_pred) - zeta_gt).abs().sum(dim=1)

    def _footprint(self) -> int:
        """Half-width of the window that decides one pixel's magnitude."""
        return 1 + (max(1, math.ceil(2 * self.sigma)) if self.sigma > 0 else 0)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight: Tensor = None,
                ignore_index: int = 255, **kwargs) -> Tensor:
        if seg_logits.dim() != 4 or seg_label.dim() != 3:
            raise ValueError(f'DualTaskLoss expects seg_logits (N, C, H, W) and seg_label '
                             f'(N, H, W), got {tuple(seg_logits.shape)} and '
                             f'{tuple(seg_label.shape)}')
        with torch.autocast(device_type=seg_logits.device.type, enabled=False):
            logits = upcast(seg_logits)
            if logits.shape[-2:] != seg_label.shape[-2:]:
                logits = resize(logits, size=seg_label.shape[-2:], mode='bilinear',
                                align_corners=False)
            valid = seg_label != ignore_index
            index = torch.where(valid, seg_label, 0).long().unsqueeze(1)
            soft = gumbel_softmax(logits, self.tau)
            # A few classes at a time, recomputed in the backward pass: only the
            # softmax sample stays in memory, not the per-class Sobel maps.
            d = sum(checkpoint(self._boundary_l1, soft[:, k:k + self.class_chunk], index, k,
                               use_reentrant=False)
                    for k in range(0, soft.shape[1], self.class_chunk))
            # Leave out pixels whose window sees an ignored pixel.
            r = self._footprint()
            near_ignore = F.max_pool2d((~valid).to(logits.dtype).unsqueeze(1), 2 * r + 1, 1, r)
            keep = (near_ignore[:, 0] == 0).to(logits.dtype)
            if weight is not None:
                keep = keep * weight.to(logits.dtype)

            with torch.no_grad():
                pred_label = torch.where(valid, logits.argmax(dim=1), ignore_index)
                on_gt = label_boundaries(seg_label, ignore_index)[0][:, 0] * keep
                on_pred = label_boundaries(pred_label, ignore_index)[0][:, 0] * keep
            loss_gt = (d * on_gt).sum() / on_gt.sum().clamp(min=1.0)
            loss_pred = (d * on_pred).sum() / on_pred.sum().clamp(min=1.0)
            return self.loss_weight * 0.5 * (loss_gt + loss_pred)

    @property
    def loss_name(self) -> str:
        return self._loss_name
