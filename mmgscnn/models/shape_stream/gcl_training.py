"""The 1x1 GCL's training step as one autograd Function.

:class:`GatedSpatialConv` computes ``conv(z) * (1 + alpha)`` with ``alpha =
sigmoid(bn2(conv2(relu(conv1(bn1(z))))))``. Both convolutions that read
``z`` (``conv`` and ``conv1``, with ``bn1`` folded into it,
:mod:`.norm_conv`) send a gradient back to ``z``; under autograd these are
two transposed convolutions and one more full-resolution pass to add them.
Here the two gradients w.r.t. the convolutions' outputs are written into one
buffer and a single transposed convolution of the concatenated weights
gives their sum (its bias carries ``bn1``'s constant term). Forward: the
same passes as the modules; backward: one full-resolution pass fewer (7).
Exact up to rounding; ``z``, ``relu``'s output, ``bn2``'s input and
``alpha`` are kept, as under autograd.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from .norm_conv import (batch_norm_stats_args, conv_after_norm, fold, folds_in_training,
                        norm_affine, norm_folds_into, unfold_grads, update_running_stats)

_CONV1X1 = ([1, 1], [0, 0], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, ...


class _GatedConv1x1(torch.autograd.Function):

    @staticmethod
    def forward(ctx, z, gamma1, beta1, weight1, bias1, weight2, gamma2, beta2,
                running_mean2, running_var2, momentum2, eps1, eps2, weight):
        folded1, folded_bias1, stats = fold(z, gamma1, beta1, weight1, bias1, eps1)
        h = F.conv2d(z, folded1, folded_bias1).relu_()
        u = F.conv2d(h, weight2)
        alpha, mean2, invstd2 = torch.ops.aten.native_batch_norm(
            u, gamma2, beta2, running_mean2, running_var2, True, momentum2, eps2)
        alpha = alpha.sigmoid_()
        y = F.conv2d(z, weight)
        ctx.eps2 = eps2
        ctx.save_for_backward(z, h, u, alpha, weight, folded1, weight2, gamma1, gamma2,
                              mean2, invstd2, *stats)
        mean1, var1 = stats[:2]
        ctx.mark_non_differentiable(mean1, var1)
        return torch.addcmul(y, y, alpha), mean1, var1

    @staticmethod
    def backward(ctx, grad, _grad_mean, _grad_var):
        (z, h, u, alpha, weight, folded1, weight2, gamma1, gamma2, mean2, invstd2,
         *stats) = ctx.saved_tensors
        need = ctx.needs_input_grad
        c = z.shape[1]
        # the gradients w.r.t. conv1's and conv's outputs, side by side in
        # one buffer (Dynamo takes no strided out=: a concatenation there,
        # which Inductor fuses)
        compiling = torch.compiler.is_compiling()
        if compiling:
            g_y = torch.addcmul(grad, grad, alpha)
        else:
            layout = (torch.channels_last if z.is_contiguous(memory_format=torch.channels_last)
                      and not z.is_contiguous() else torch.contiguous_format)
            buf = torch.empty((z.shape[0], c + weight.shape[0], *z.shape[2:]), dtype=z.dtype,
                              device=z.device, memory_format=layout)
            torch.addcmul(grad, grad, alpha, out=buf[:, c:])
        g_alpha = (grad * F.conv2d(z, weight)).sum(1, keepdim=True)
        g_v = torch.ops.aten.sigmoid_backward(g_alpha, alpha)
        g_u, g_gamma2, g_beta2 = torch.ops.aten.native_batch_norm_backward(
            g_v, u, gamma2, None, None, mean2, invstd2, True, ctx.eps2,
            [True, need[6], need[7]])
        g_h, g_weight2, _ = torch.ops.aten.convolution_backward(
            g_u, h, weight2, None, *_CONV1X1, [True, need[5], False])
        if compiling:
            buf = torch.cat([torch.ops.aten.threshold_backward(g_h, h, 0), g_y], 1)
        else:
            torch.ops.aten.threshold_backward.grad_input(g_h, h, 0, grad_input=buf[:, :c])
        del g_h, g_u, g_v, g_alpha
        both = torch.cat([folded1, weight])
        _, g_both, g_bias = torch.ops.aten.convolution_backward(
            buf, z, both, [both.shape[0]], *_CONV1X1, [False, True, True])
        g_weight1, g_gamma1, g_beta1, a, b = unfold_grads(
            g_both[:c], g_bias[:c], gamma1, stats, z.numel() // c)
        g_z = F.conv_transpose2d(buf, both, b)
        g_z.addcmul_(z, a.view(1, -1, 1, 1))
        return (g_z, g_gamma1, g_beta1, g_weight1, g_bias[:c], g_weight2, g_gamma2, g_beta2,
                None, None, None, None, None, g_both[c:])


def _plain_conv_norm(module: nn.Module) -> bool:
    """A ConvModule ``conv -> BatchNorm2d`` (training, no activation) whose
    conv is a bias-free plain 1x1."""
    return (isinstance(module, ConvModule) and module.order == ('conv', 'norm', 'act')
            and not module.with_explicit_padding and module.with_norm
            and not module.with_activation and type(module.norm) is nn.BatchNorm2d
            and module.norm.training and module.conv.bias is None
            and norm_folds_into(module.conv))


def gated_conv1x1_training(attention: nn.Sequential, weight: Tensor,
                           z: Tensor) -> Optional[Tensor]:
    """``F.conv2d(z, weight) * (1 + attention(z))`` in training as
    :class:`_GatedConv1x1`, where ``attention`` is the GCL's ``(BatchNorm2d,
    ConvModule 1x1 with bias + ReLU, ConvModule 1x1 + BatchNorm2d, Sigmoid)``
    with plain modules in training mode and ``z`` (N, C, H, W) float32 or
    float64 outside autocast; running statistics and batch counts updated
    as the modules would. ``weight``: (O, C, 1, 1). None where it does not
    apply (the modules then run as they are)."""
    if len(attention) != 4 or not torch.is_grad_enabled():
        return None
    norm1, first, second, last = attention
    conv1 = conv_after_norm(first)
    if (conv1 is None or not folds_in_training(norm1, conv1, z) or conv1.bias is None
            or not first.with_activation or type(first.activate) is not nn.ReLU
            or not _plain_conv_norm(second) or type(last) is not nn.Sigmoid):
        return None
    norm2 = second.norm
    running_mean2, running_var2, momentum2 = batch_norm_stats_args(norm2)
    gamma1, beta1 = norm_affine(norm1, z)
    out, mean1, var1 = _GatedConv1x1.apply(
        z, gamma1, beta1, conv1.weight, conv1.bias, second.conv.weight, norm2.weight,
        norm2.bias, running_mean2, running_var2, momentum2, norm1.eps, norm2.eps, weight)
    update_running_stats(norm1, mean1, var1, z.numel() // z.shape[1])
    return out
