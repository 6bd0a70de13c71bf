"""mmseg's ResNet ``BasicBlock`` that keeps fewer full-resolution maps for
the backward pass (the shape stream runs two of them at full resolution).

A convolution followed by a training-mode batch norm keeps, under autograd,
both the convolution's input (for its weight gradient) and its output (the
norm's input). :class:`_ConvBatchNorm` keeps only the input and the norm's
batch statistics and recomputes the convolution in the backward pass: one
dense convolution more per pair, no memory-bound pass more (the norm's
backward is the same kernel). In a ``BasicBlock`` the two convolutions'
outputs are no longer kept: 2 of its 5 full-resolution maps.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.models.backbones.resnet import BasicBlock
from .norm_conv import batch_norm_stats_args


class _ConvBatchNorm(torch.autograd.Function):
    """``batch_norm(conv2d(x, weight))``, training mode (batch statistics;
    the running statistics are updated in place), keeping ``x``."""

    @staticmethod
    def forward(ctx, x, weight, gamma, beta, running_mean, running_var, momentum, eps,
                stride, padding, dilation):
        c = F.conv2d(x, weight, None, stride, padding, dilation)
        y, mean, invstd = torch.ops.aten.native_batch_norm(
            c, gamma, beta, running_mean, running_var, True, momentum, eps)
        ctx.conv = (stride, padding, dilation)
        ctx.eps = eps
        ctx.save_for_backward(x, weight, gamma, mean, invstd)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight, gamma, mean, invstd = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        need = ctx.needs_input_grad
        c = F.conv2d(x, weight, None, stride, padding, dilation)  # recomputed
        g_c, g_gamma, g_beta = torch.ops.aten.native_batch_norm_backward(
            grad, c, gamma, None, None, mean, invstd, True, ctx.eps,
            [True, gamma is not None and need[2], need[3]])
        del c
        g_x, g_w, _ = torch.ops.aten.convolution_backward(
            g_c, x, weight, None, list(stride), list(padding), list(dilation), False, [0, 0],
            1, [need[0], need[1], False])
        return g_x, g_w, g_gamma, g_beta, None, None, None, None, None, None, None


def _plain(conv: nn.Module, norm: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.bias is None and conv.groups == 1
            and conv.padding_mode == 'zeros' and type(norm) is nn.BatchNorm2d
            and norm.training)


def conv_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d, x: Tensor) -> Tensor:
    """``norm(conv(x))`` for a training-mode ``norm`` (running statistics and
    batch count updated as ``norm`` would), keeping ``x`` rather than the
    convolution's output for the backward pass."""
    running_mean, running_var, momentum = batch_norm_stats_args(norm)
    return _ConvBatchNorm.apply(x, conv.weight, norm.weight, norm.bias, running_mean,
                                running_var, momentum, norm.eps, conv.stride, conv.padding,
                                conv.dilation)


class RecomputingBasicBlock(BasicBlock):
    """``BasicBlock`` (same arguments, parameters and state dict) whose
    training forward keeps only its input, the first ReLU's output and its
    own output for the backward pass (:func:`conv_batch_norm`), where that
    is exact: plain ``nn.BatchNorm2d`` in training mode, bias-free
    convolutions, no downsample or checkpointing, float32/float64
    outside autocast. Otherwise, and at inference, ``BasicBlock.forward``."""

    #: mmgscnn.deploy.fuse_conv_act fuses it like a BasicBlock at inference
    fuses_like_basic_block = True

    def _recomputes(self, x: Tensor) -> bool:
        return (self.training and torch.is_grad_enabled() and self.downsample is None
                and not self.with_cp  # (mmseg's BasicBlock takes no plugins)
                and _plain(self.conv1, self.norm1) and _plain(self.conv2, self.norm2)
                and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled(x.device.type))

    def forward(self, x: Tensor) -> Tensor:
        if not self._recomputes(x):
            return super().forward(x)
        out = self.relu(conv_batch_norm(self.conv1, self.norm1, x))
        out = conv_batch_norm(self.conv2, self.norm2, out)
        out += x
        return self.relu(out)
