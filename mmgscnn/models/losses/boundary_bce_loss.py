"""Class-balanced binary cross-entropy on boundary logits."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from .utils import upcast


@MODELS.register_module()
class BoundaryBCELoss(nn.Module):
    """Class-balanced BCE between boundary logits and a boundary target.

    Weights are computed per batch over the valid pixels: with ``P`` boundary
    and ``Q`` non-boundary pixels, boundary pixels weigh ``Q / (P + Q)`` and
    the others ``P / (P + Q)``; the weighted BCE-with-logits is averaged over
    the valid pixels. (A batch without any boundary pixel thus gives 0.)
    Computed from logits (``binary_cross_entropy_with_logits``), never from
    probabilities; no host-device synchronisation.

    Args:
        loss_weight: factor on the loss (paper: 20).
        loss_name: key in the loss dict, must start with ``loss_``.

    Forward: logits (N, 1, H, W), target (N, 1, H, W) in {0, 1}, optional
    ``valid`` (N, 1, H, W) bool (False: excluded) -> scalar.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_boundary'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: Tensor, target: Tensor, valid: Tensor = None) -> Tensor:
        if logits.shape != target.shape:
            raise ValueError(f'BoundaryBCELoss: logits {tuple(logits.shape)} and target '
                             f'{tuple(target.shape)} must have the same shape')
        logits = upcast(logits)
        target = target.to(logits.dtype)
        valid = torch.ones_like(target) if valid is None else valid.to(target.dtype)
        pos = (target * valid).sum()
        total = valid.sum()
        neg = total - pos
        total = total.clamp(min=1.0)
        weight = torch.where(target > 0.5, neg / total, pos / total) * valid
        loss = F.binary_cross_entropy_with_logits(logits, target, weight, reduction='sum')
        return self.loss_weight * loss / total

    @property
    def loss_name(self) -> str:
        return self._loss_name
