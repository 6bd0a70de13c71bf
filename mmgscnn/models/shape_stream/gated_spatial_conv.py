"""Gated convolution layer (GCL) of Gated-SCNN."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS
from .gcl_training import gated_conv1x1_training
from .norm_conv import conv_after_norm, folds_in_training, norm_conv1x1


class _Gating(torch.autograd.Function):
    """``y * (1 + alpha)`` for y (N, C, H, W), alpha (N, 1, H, W): one pass
    forward, three backward (autograd's ``addcmul(y, y, alpha)`` takes four:
    ``y`` is two of its inputs, so its two gradients are added)."""

    @staticmethod
    def forward(ctx, y: Tensor, alpha: Tensor) -> Tensor:
        ctx.save_for_backward(y, alpha)
        return torch.addcmul(y, y, alpha)

    @staticmethod
    def backward(ctx, grad: Tensor):
        y, alpha = ctx.saved_tensors
        grad_y = grad_alpha = None
        if ctx.needs_input_grad[0]:
            grad_y = torch.addcmul(grad, grad, alpha).to(y.dtype)
        if ctx.needs_input_grad[1]:
            grad_alpha = (grad * y).sum(1, keepdim=True).to(alpha.dtype)
        return grad_y, grad_alpha


class _ConvGating(torch.autograd.Function):
    """``conv1x1(z, weight) * (1 + alpha)`` (bias-free) keeping ``z`` (which
    the attention's norm keeps anyway) rather than the product ``conv(z)``:
    the backward pass recomputes it, one 1x1 convolution."""

    @staticmethod
    def forward(ctx, z: Tensor, weight: Tensor, alpha: Tensor) -> Tensor:
        w = weight.to(z.dtype)
        y = F.conv2d(z, w)
        ctx.save_for_backward(z, weight, alpha)
        return torch.addcmul(y, y, alpha)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, weight, alpha = ctx.saved_tensors
        w = weight.to(z.dtype)
        grad_y = torch.addcmul(grad, grad, alpha).to(z.dtype)
        grad_alpha = None
        if ctx.needs_input_grad[2]:
            grad_alpha = (grad * F.conv2d(z, w)).sum(1, keepdim=True).to(alpha.dtype)
        grad_z, grad_w, _ = torch.ops.aten.convolution_backward(
            grad_y, z, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        return grad_z, None if grad_w is None else grad_w.to(weight.dtype), grad_alpha


def conv1x1_gating(z: Tensor, weight: Tensor, alpha: Tensor) -> Tensor:
    """``conv1x1(z, weight) * (1 + alpha)`` (no bias), alpha broadcast over
    the channels; under autocast in the dtype ``conv2d`` would take."""
    device = z.device.type
    if torch.is_autocast_enabled(device):
        z = z.to(torch.get_autocast_dtype(device))
    with torch.autocast(device, enabled=False):
        return _ConvGating.apply(z, weight, alpha)


def gating(y: Tensor, alpha: Tensor) -> Tensor:
    """``y * (1 + alpha)``, alpha broadcast over the channels."""
    if torch.is_grad_enabled() and (y.requires_grad or alpha.requires_grad):
        return _Gating.apply(y, alpha)
    return torch.addcmul(y, y, alpha)


@MODELS.register_module()
class GatedSpatialConv(BaseModule):
    """Gated convolution layer: regular-stream features gate shape features.

    With ``z = cat(x, extra, gate)`` (C + 1 channels; ``extra`` optional,
    e.g. the stem's features: ``x`` then stands for ``cat(x, extra)``):
    ``alpha = attention(z) = sigmoid(norm(conv1x1(relu(conv1x1(norm(z))))))``
    (``attention`` = norm over C + 1 -> 1x1 ConvModule C + 1 -> C + 1 with
    bias and ``act_cfg`` -> 1x1 ConvModule to one channel, no bias, with
    ``norm_cfg`` -> sigmoid), and the output is ``conv(x * (1 + alpha))``
    (``conv``: bias-free, weight (out_channels, C, k, k)). With ``alpha = 0``
    this is ``conv(x)``.

    How it is computed (exactly that, with fewer full-resolution passes):
    ``z`` is the only concatenation; ``conv`` runs on ``z`` with a zero
    weight for the gate channel (no channel slice of ``z`` to copy); for
    ``kernel_size=1`` the gating moves past it, ``conv(x) * (1 + alpha)``
    (``alpha`` is one value per pixel and the 1x1 conv has no bias), so it
    applies to ``out_channels`` rather than ``C`` channels, and its backward
    pass recomputes ``conv(z)`` rather than keeping it. In training, with
    plain modules (BatchNorm2d, 1x1 convs, ReLU, sigmoid) the whole layer is
    one autograd Function (:mod:`.gcl_training`) whose backward pass sums
    the two gradients w.r.t. ``z`` inside one transposed convolution.

    Args:
        in_channels: channels C of the shape-stream features (with
            ``extra``'s).
        out_channels: channels of the output.
        kernel_size: kernel of the output convolution (odd; 'same' padding).
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs; ``norm_cfg`` may be
            ``dict(type='SyncBN')`` for distributed training.

    Shapes: x (N, C_x, H, W), gate (N, 1, H, W), extra (N, C - C_x, H, W) ->
    (N, out_channels, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg)
        if kernel_size % 2 != 1:
            raise ValueError(f'GatedSpatialConv kernel_size must be odd, got {kernel_size}')
        c = in_channels + 1
        self.attention = nn.Sequential(
            build_norm_layer(norm_cfg, c)[1],
            ConvModule(c, c, 1, conv_cfg=conv_cfg, norm_cfg=None, act_cfg=act_cfg),
            ConvModule(c, 1, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None),
            nn.Sigmoid())
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size,
                                     padding=kernel_size // 2, bias=False)

    def _plain_1x1(self) -> bool:
        conv = self.conv
        return (conv.stride, conv.dilation, conv.groups, conv.padding_mode) == \
            ((1, 1), (1, 1), 1, 'zeros')

    def _attention(self, z: Tensor) -> Tensor:
        """``self.attention(z)``; in training, its input norm folded into the
        1x1 conv after it (:func:`norm_conv1x1`: no normalised copy of ``z``
        is made or kept) where that is exact."""
        norm, first = self.attention[0], self.attention[1]
        conv = conv_after_norm(first)
        if conv is None or not folds_in_training(norm, conv, z):
            return self.attention(z)
        h = norm_conv1x1(norm, conv, z)
        if first.with_activation:
            h = first.activate(h)
        return self.attention[2:](h)

    def forward(self, x: Tensor, gate: Tensor, extra: Optional[Tensor] = None) -> Tensor:
        if gate.shape[1] != 1 or gate.shape[-2:] != x.shape[-2:] or gate.shape[0] != x.shape[0]:
            raise ValueError(f'GatedSpatialConv: gate must be (N, 1, H, W) matching x '
                             f'{tuple(x.shape)}, got {tuple(gate.shape)}')
        parts = [x] if extra is None else [x, extra]
        z = torch.cat(parts + [gate], dim=1)
        plain = type(self.conv) is nn.Conv2d and self.conv.bias is None
        if plain:
            # conv over z, the gate channel weighted 0: conv(x) without slicing z
            weight = F.pad(self.conv.weight, (0, 0, 0, 0, 0, 1))
            if self.conv.kernel_size == (1, 1) and self._plain_1x1():
                out = gated_conv1x1_training(self.attention, weight, z)
                if out is not None:
                    return out
        alpha = self._attention(z)
        if not plain:
            x = parts[0] if extra is None else torch.cat(parts, dim=1)
            return self.conv(gating(x, alpha))
        if self.conv.kernel_size == (1, 1):
            if torch.is_grad_enabled() and self._plain_1x1():
                return conv1x1_gating(z, weight, alpha)
            return gating(self.conv._conv_forward(z, weight, None), alpha)
        return self.conv._conv_forward(gating(z, alpha), weight, None)
