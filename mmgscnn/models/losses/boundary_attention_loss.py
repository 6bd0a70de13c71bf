"""Segmentation loss restricted to boundary pixels (Gated-SCNN's attention loss)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.losses import cross_entropy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from ..shape_stream.boundary_targets import boundary_mask
from .utils import as_two_class, check_upcast, compute_dtype, upcast


def _logit(p: float) -> float:
    """``log(p / (1 - p))``: ``sigmoid(x) > p`` is ``x > _logit(p)``."""
    if p <= 0:
        return float('-inf')
    if p >= 1:
        return float('inf')
    return math.log(p / (1.0 - p))


class _SelectedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over the non-ignored pixels of ``target`` and, in
    the same pass, its gradient w.r.t. the logits, kept in the logits'
    dtype (no float32 log-probabilities of half logits kept for backward)."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index, need_grad, upcast):
        x = logits.to(compute_dtype(logits)) if upcast is None else upcast
        logp = F.log_softmax(x, dim=1)
        # reduction 'sum' (2); total_weight: the number of non-ignored pixels
        loss, count = torch.ops.aten.nll_loss2d_forward(logp, target, None, 2, ignore_index)
        count = count.clamp(min=1.0)
        if need_grad:
            grad = torch.ops.aten.nll_loss2d_backward(1.0 / count, logp, target, None, 2,
                                                      ignore_index, count)
            grad = torch._log_softmax_backward_data(grad, logp, 1, logp.dtype)
            ctx.save_for_backward(grad.to(logits.dtype))
        return loss / count

    @staticmethod
    def backward(ctx, grad_loss):
        grad, = ctx.saved_tensors
        return grad * grad_loss.to(grad.dtype), None, None, None, None


def _check_log_probs(seg_logits: Tensor, seg_label: Tensor, weight: Tensor,
                     upcast_logits: Tensor, log_probs: Tensor) -> None:
    """Refuse a ``log_probs`` that cannot be ``log_softmax(seg_logits)`` in
    the compute dtype at the label size, or that comes with per-pixel
    weights or ``upcast_logits`` (one-line error)."""
    if log_probs is None:
        return
    if weight is not None or upcast_logits is not None:
        raise ValueError('BoundaryAttentionLoss takes log_probs without weight and '
                         'upcast_logits; leave log_probs out to use them')
    if (log_probs.shape != seg_logits.shape or seg_logits.shape[-2:] != seg_label.shape[-2:]
            or log_probs.dtype != compute_dtype(seg_logits) or seg_logits.shape[1] < 2):
        raise ValueError(
            f'BoundaryAttentionLoss log_probs must be log_softmax(seg_logits) (2 or more '
            f'classes) in '
            f'{compute_dtype(seg_logits)} at the label size {tuple(seg_label.shape)}, got '
            f'{tuple(log_probs.shape)} {log_probs.dtype} for seg_logits '
            f'{tuple(seg_logits.shape)}; leave it out otherwise')


@MODELS.register_module()
class BoundaryAttentionLoss(nn.Module):
    """Cross-entropy of the segmentation on boundary pixels only.

    Inside :class:`GatedShapeHead` the boundary pixels are those where the
    shape stream's boundary probability exceeds ``threshold`` (paper: 0.8),
    i.e. whose boundary logit exceeds ``log(t / (1 - t))`` (compared in
    float32 at least); the mask carries no gradient. Used on its own as a
    ``loss_decode`` entry of any decode head, where no boundary map exists,
    the pixels within ``radius`` of a ground-truth boundary are used instead.

    The loss is the mean cross-entropy over the selected, non-ignored pixels,
    and exactly 0 (with a valid, zero gradient) when none is selected.
    Without per-pixel weights it is one masked-label cross-entropy summed
    by ``nll_loss2d``, which also counts the pixels, with its gradient made
    in the same forward pass and kept in the logits' dtype: about 7
    full-resolution passes in all, and no per-pixel loss map.

    Args:
        threshold: boundary probability above which a pixel is selected.
        radius: ground-truth boundary radius when no boundary map is given.
        loss_weight: factor on the loss.
        loss_name: key in the loss dict, must start with ``loss_``.

    Heads with one output channel (binary, sigmoid) are read as two-class
    logits ``(0, x)``: the cross-entropy is then the binary one.

    Forward: seg_logits (N, C, H, W), seg_label (N, H, W); optional
    ``weight`` (N, H, W) per-pixel weights (mmseg's sampler),
    ``ignore_index``, ``boundary_logits`` (N, 1, h, w), resized to the
    label size when needed, ``upcast_logits``: the same logits already
    in float32 (shared with the dual-task loss under AMP; at the label
    size), and ``log_probs``: ``log_softmax(seg_logits)`` in float32 (at
    least) at the label size, with grad, e.g. the decoder's cross-entropy's
    (:class:`GatedShapeHead` passes it): the loss is then ``nll_loss2d`` of
    them through autograd, whose gradient joins the cross-entropy's before
    their shared log-softmax backward (no log-softmax of its own) -> scalar.
    """

    def __init__(self, threshold: float = 0.8, radius: int = 1,
                 loss_weight: float = 1.0, loss_name: str = 'loss_attention'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        self.threshold = threshold
        self.radius = radius
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight: Tensor = None,
                ignore_index: int = 255, boundary_logits: Tensor = None,
                upcast_logits: Tensor = None, log_probs: Tensor = None,
                **kwargs) -> Tensor:
        check_upcast('BoundaryAttentionLoss', seg_logits, seg_label, upcast_logits)
        _check_log_probs(seg_logits, seg_label, weight, upcast_logits, log_probs)
        seg_logits = as_two_class(seg_logits)
        if upcast_logits is not None:
            upcast_logits = as_two_class(upcast_logits.detach())
        if seg_logits.shape[-2:] != seg_label.shape[-2:]:
            seg_logits = resize(seg_logits, size=seg_label.shape[-2:], mode='bilinear',
                                align_corners=False)
        with torch.no_grad():
            if boundary_logits is None:
                selected = boundary_mask(seg_label, ignore_index, self.radius)[:, 0]
            else:
                if boundary_logits.shape[-2:] != seg_label.shape[-2:]:
                    boundary_logits = resize(boundary_logits, size=seg_label.shape[-2:],
                                             mode='bilinear', align_corners=False)
                selected = upcast(boundary_logits[:, 0]) > _logit(self.threshold)
            if weight is None:
                # unselected pixels become ignored (the labels stay int64, as
                # nll_loss2d wants them)
                target = torch.where(selected, seg_label, ignore_index)
            else:
                pixel_weight = (selected & (seg_label != ignore_index)).to(
                    upcast(seg_logits).dtype) * weight
                count = pixel_weight.sum()
        if log_probs is not None:
            with torch.autocast(device_type=seg_logits.device.type, enabled=False):
                # reduction 'sum' (2); the count: the non-ignored pixels of target
                loss, count = torch.ops.aten.nll_loss2d_forward(log_probs, target, None, 2,
                                                                ignore_index)
            return self.loss_weight * (loss / count.clamp(min=1.0))
        if weight is None:
            with torch.autocast(device_type=seg_logits.device.type, enabled=False):
                need_grad = torch.is_grad_enabled() and seg_logits.requires_grad
                loss = _SelectedCrossEntropy.apply(seg_logits, target, ignore_index,
                                                   need_grad, upcast_logits)
            return self.loss_weight * loss
        loss = cross_entropy(upcast(seg_logits), seg_label, weight=pixel_weight,
                             reduction='none', ignore_index=ignore_index).sum()
        return self.loss_weight * loss / count.clamp(min=1.0)

    @property
    def loss_name(self) -> str:
        return self._loss_name
