"""Class-balanced binary cross-entropy on boundary logits."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from .utils import compute_dtype


class _BalancedBCE(torch.autograd.Function):
    """Loss value and, in the same pass, its gradient w.r.t. the logits,
    kept in the logits' dtype (no float32 copy of half logits is kept)."""

    @staticmethod
    def forward(ctx, logits, target, valid, need_grad, masked):
        dtype = compute_dtype(logits)
        x = logits.to(dtype)
        t = target.to(dtype)
        if valid is None:
            total = t.new_full((), float(t.numel()))
            pos = t.sum()
        else:
            total = valid.sum().to(dtype)
            pos = t.sum() if masked else (t * valid).sum()
        neg = total - pos
        total = total.clamp(min=1.0)
        # per-pixel weight / total: the loss is a plain weighted sum
        if masked and target.is_floating_point():
            # a masked target is 0 or 1 (boundary_target's): lerp gives
            # either end exactly, from the target itself (no threshold pass)
            weight = torch.lerp(pos / total / total, neg / total / total, t)
        else:
            # a bool target is its own mask of boundary pixels (no threshold)
            positive = target if target.dtype == torch.bool else t > 0.5
            weight = torch.where(positive, neg / total / total, pos / total / total)
        if valid is not None:
            weight = weight.mul_(valid)
        loss = F.binary_cross_entropy_with_logits(x, t, weight, reduction='sum')
        if need_grad:
            grad = torch.sigmoid(x).sub_(t).mul_(weight)
            ctx.save_for_backward(grad.to(logits.dtype))
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad, = ctx.saved_tensors
        return grad * grad_loss.to(grad.dtype), None, None, None, None


@MODELS.register_module()
class BoundaryBCELoss(nn.Module):
    """Class-balanced BCE between boundary logits and a boundary target.

    Weights are computed per batch over the valid pixels: with ``P`` boundary
    and ``Q`` non-boundary pixels, boundary pixels weigh ``Q / (P + Q)`` and
    the others ``P / (P + Q)``; the weighted BCE-with-logits is averaged over
    the valid pixels. (A batch without any boundary pixel thus gives 0.)
    Computed from logits (``binary_cross_entropy_with_logits``), never from
    probabilities, in float32 for half-precision logits; no host-device
    synchronisation. The gradient is made in the forward pass (about 10
    full-resolution passes in all) and kept in the logits' dtype.

    Args:
        loss_weight: factor on the loss (paper: 20).
        loss_name: key in the loss dict, must start with ``loss_``.

    Forward: logits (N, 1, H, W), target (N, 1, H, W) in {0, 1} (float or
    bool; bool saves a threshold pass), optional ``valid`` (N, 1, H, W) bool
    (False: excluded), ``target_masked``: the caller guarantees the target
    is exactly 0 or 1, and 0 wherever ``valid`` is False (as
    :func:`boundary_target` gives it): no product to count its pixels, and
    for a float32 target no threshold either (its class weights by
    ``lerp``); a target that is not gets wrong class weights -> scalar.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_boundary'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: Tensor, target: Tensor, valid: Tensor = None,
                target_masked: bool = False) -> Tensor:
        if logits.shape != target.shape:
            raise ValueError(f'BoundaryBCELoss: logits {tuple(logits.shape)} and target '
                             f'{tuple(target.shape)} must have the same shape')
        with torch.autocast(device_type=logits.device.type, enabled=False):
            need_grad = torch.is_grad_enabled() and logits.requires_grad
            loss = _BalancedBCE.apply(logits, target, valid, need_grad, target_masked)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name
