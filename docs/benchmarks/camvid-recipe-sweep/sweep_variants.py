"""Diagnostic variants for the CamVid recipe sweep (scratch, not the package).

SWEEP_NOBAND=1: boundary BCE targets without the band around ignored pixels
(valid = label != ignore, as the code of 2026-11-25 did).
OldDualTaskLoss: the dual-task loss of commit 24e37ff (tau 1, per-pixel sum
over all classes, 0.5 * (mean over GT boundary + mean over predicted boundary)).
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmgscnn.models.decode_heads.gated_shape_head import GatedShapeHead
from mmgscnn.models.losses.dual_task_loss import gumbel_softmax
from mmgscnn.models.losses.utils import upcast
from mmgscnn.models.shape_stream.boundary_targets import label_boundaries
from mmgscnn.models.shape_stream.image_gradient import sobel

if os.environ.get('SWEEP_NOBAND') == '1':
    def _no_band_targets(self, seg_label, batch_data_samples):
        return label_boundaries(seg_label, self.ignore_index, self.boundary_target['radius'])
    GatedShapeHead.boundary_targets = _no_band_targets
    print('[sweep] boundary targets without the ignore band', flush=True)


@MODELS.register_module()
class OldDualTaskLoss(nn.Module):
    def __init__(self, tau=1.0, sigma=1.0, loss_weight=1.0, loss_name='loss_dual_task',
                 class_chunk=4):
        super().__init__()
        self.tau, self.sigma, self.loss_weight = tau, sigma, loss_weight
        self.class_chunk = class_chunk
        self._loss_name = loss_name

    def _mag(self, soft):
        gx, gy = sobel(soft, self.sigma)
        return torch.sqrt(gx * gx + gy * gy + 1e-12)

    def _l1(self, soft_pred, index, first):
        classes = torch.arange(first, first + soft_pred.shape[1], device=index.device)
        onehot = (index == classes.view(1, -1, 1, 1)).to(soft_pred.dtype)
        with torch.no_grad():
            zeta_gt = self._mag(onehot)
        return (self._mag(soft_pred) - zeta_gt).abs().sum(dim=1)

    def forward(self, seg_logits, seg_label, weight=None, ignore_index=255, **kwargs):
        with torch.autocast(device_type=seg_logits.device.type, enabled=False):
            logits = upcast(seg_logits)
            if logits.shape[-2:] != seg_label.shape[-2:]:
                logits = resize(logits, size=seg_label.shape[-2:], mode='bilinear',
                                align_corners=False)
            valid = seg_label != ignore_index
            index = torch.where(valid, seg_label, 0).long().unsqueeze(1)
            soft = gumbel_softmax(logits, self.tau)
            d = sum(checkpoint(self._l1, soft[:, k:k + self.class_chunk], index, k,
                               use_reentrant=False)
                    for k in range(0, soft.shape[1], self.class_chunk))
            r = 1 + (max(1, math.ceil(2 * self.sigma)) if self.sigma > 0 else 0)
            near = F.max_pool2d((~valid).to(logits.dtype).unsqueeze(1), 2 * r + 1, 1, r)
            keep = (near[:, 0] == 0).to(logits.dtype)
            with torch.no_grad():
                pred_label = torch.where(valid, logits.argmax(dim=1), ignore_index)
                on_gt = label_boundaries(seg_label, ignore_index)[0][:, 0] * keep
                on_pred = label_boundaries(pred_label, ignore_index)[0][:, 0] * keep
            loss_gt = (d * on_gt).sum() / on_gt.sum().clamp(min=1.0)
            loss_pred = (d * on_pred).sum() / on_pred.sum().clamp(min=1.0)
            return self.loss_weight * 0.5 * (loss_gt + loss_pred)

    @property
    def loss_name(self):
        return self._loss_name
