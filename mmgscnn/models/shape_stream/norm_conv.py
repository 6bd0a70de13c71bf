"""A training-mode batch norm folded into the 1x1 convolution after it.

``conv1x1(W, b)(batch_norm(z))`` with the batch statistics of ``z`` equals
``conv1x1(W * s, b + W @ t)(z)`` with ``s = gamma / sqrt(var + eps)`` and
``t = beta - mean * s`` per input channel. Computed that way, the
normalised copy of ``z`` is never written, read or kept for the backward
pass (``z`` is kept, as the convolution of the unfolded form keeps its
input): one reduction (``var_mean``) forward instead of the norm's pass, and
backward one transposed convolution (whose bias carries the statistics'
constant term) and one ``addcmul`` instead of the norm's backward pass. The
gradients of the statistics come from the folded convolution's weight and
bias gradients (small tensors). Exact up to rounding.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor


def fold(z: Tensor, gamma: Tensor, beta: Tensor, weight: Tensor, bias: Tensor,
         eps: float) -> tuple:
    """Batch statistics of ``z`` (N, C, H, W) and the 1x1 convolution
    ``weight`` (O, C, 1, 1), ``bias`` (O,) with the norm folded in: one
    reduction pass. -> (folded weight, folded bias, stats), ``stats`` for
    :func:`unfold_grads`: (mean, var, invstd, s, t, weight as (O, C))."""
    var, mean = torch.var_mean(z, dim=(0, 2, 3), correction=0)
    invstd = torch.rsqrt(var + eps)
    s = gamma * invstd
    t = beta - mean * s
    w2 = weight.flatten(1)                                       # (O, C)
    return (w2 * s).view_as(weight), bias + w2 @ t, (mean, var, invstd, s, t, w2)


def unfold_grads(g_folded: Tensor, g_bias: Tensor, gamma: Tensor, stats: tuple,
                 m: int) -> tuple:
    """Gradients through :func:`fold` from those of the folded weight
    (O, C, 1, 1) and bias (O,), over ``m`` values per channel -> (weight,
    gamma, beta gradients, ``a``, ``b``): the gradient w.r.t. ``z`` is that
    of the folded convolution's input plus ``z * a + b`` (per channel),
    the path through the statistics."""
    mean, _, invstd, s, t, w2 = stats
    g_w2f = g_folded.flatten(1)                                   # (O, C)
    g_weight = (g_w2f * s + torch.outer(g_bias, t)).view_as(g_folded)
    g_s = (g_w2f * w2).sum(0)
    g_t = g_bias @ w2                                             # (C, )
    g_s = g_s - mean * g_t                                        # t = beta - mean * s
    g_mean = -s * g_t
    g_gamma = g_s * invstd
    g_var = -0.5 * g_s * gamma * invstd ** 3                      # s = gamma * invstd
    a = 2.0 * g_var / m                                           # d var / d z = 2 (z - mean) / m
    b = g_mean / m - a * mean
    return g_weight, g_gamma, g_t, a, b


class _NormConv1x1(torch.autograd.Function):

    @staticmethod
    def forward(ctx, z: Tensor, gamma: Tensor, beta: Tensor, weight: Tensor,
                bias: Tensor, eps: float):
        folded, folded_bias, stats = fold(z, gamma, beta, weight, bias, eps)
        out = F.conv2d(z, folded, folded_bias)
        ctx.save_for_backward(z, gamma, folded, *stats)
        mean, var = stats[:2]
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_mean, _grad_var):
        z, gamma, folded, *stats = ctx.saved_tensors
        n_out = folded.shape[0]
        _, g_folded, g_bias = torch.ops.aten.convolution_backward(
            grad, z, folded, [n_out], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
            [False, True, True])
        g_weight, g_gamma, g_beta, a, b = unfold_grads(g_folded, g_bias, gamma, stats,
                                                       z.numel() // z.shape[1])
        g_z = F.conv_transpose2d(grad, folded, b)
        g_z.addcmul_(z, a.view(1, -1, 1, 1))
        return g_z, g_gamma, g_beta, g_weight, g_bias, None


def norm_folds_into(conv: nn.Module) -> bool:
    """Whether a per-channel affine map (a norm) on ``conv``'s input folds
    into its weights exactly: a plain 1x1 ``nn.Conv2d``, stride 1, no
    padding, one group (with padding or a larger kernel the border pixels
    would differ)."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1)


def conv_after_norm(module: nn.Module) -> Optional[nn.Conv2d]:
    """The convolution of ``module`` when it is an mmcv ``ConvModule`` that
    starts with it (no explicit padding layer, no norm of its own) and a norm
    before it folds into it (:func:`norm_folds_into`); else None. The GCL's
    attention is ``(norm, ConvModule, ...)``."""
    if (isinstance(module, ConvModule) and module.order[0] == 'conv'
            and not module.with_explicit_padding and not module.with_norm
            and norm_folds_into(module.conv)):
        return module.conv
    return None


def folds_in_training(norm: nn.Module, conv: nn.Module, z: Tensor) -> bool:
    """Whether :func:`norm_conv1x1` computes ``conv(norm(z))`` here: a plain
    ``nn.BatchNorm2d`` in training mode (not SyncBN, whose statistics span
    the processes), a 1x1 conv it folds into (:func:`norm_folds_into`),
    float32/float64 ``z`` outside autocast, more than one value per channel;
    otherwise the modules run as they are."""
    return (type(norm) is nn.BatchNorm2d and norm.training and norm_folds_into(conv)
            and z.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled(z.device.type)
            and z.numel() // z.shape[1] > 1)


def norm_conv1x1(norm: nn.BatchNorm2d, conv: nn.Conv2d, z: Tensor) -> Tensor:
    """``conv(norm(z))`` for a training-mode ``norm`` (batch statistics;
    its running statistics and batch count updated as ``norm`` would) without
    the normalised copy of ``z``: (N, C, H, W) -> (N, O, H, W)."""
    c = z.shape[1]
    gamma, beta = norm_affine(norm, z)
    bias: Optional[Tensor] = conv.bias
    if bias is None:
        bias = z.new_zeros(conv.out_channels)
    out, mean, var = _NormConv1x1.apply(z, gamma, beta, conv.weight, bias, norm.eps)
    update_running_stats(norm, mean, var, z.numel() // c)
    return out


def norm_affine(norm: nn.BatchNorm2d, z: Tensor) -> tuple:
    """(gamma, beta) of ``norm``: its parameters, or 1 and 0 without affine."""
    c = z.shape[1]
    if norm.affine:
        return norm.weight, norm.bias
    return z.new_ones(c), z.new_zeros(c)


def update_running_stats(norm: nn.BatchNorm2d, mean: Tensor, var: Tensor, m: int) -> None:
    """Running statistics and batch count of a training-mode ``norm`` as
    ``nn.BatchNorm2d`` updates them, from the batch ``mean`` and biased
    ``var`` over ``m`` values per channel (no host synchronisation)."""
    if not norm.track_running_stats:
        return
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        momentum = (norm.num_batches_tracked.to(norm.running_mean.dtype).reciprocal()
                    if norm.momentum is None else norm.momentum)
        norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), momentum)
        norm.running_var.lerp_((var * (m / (m - 1))).to(norm.running_var.dtype), momentum)


def batch_norm_stats_args(norm: nn.BatchNorm2d) -> tuple:
    """(running_mean, running_var, momentum) to hand ``native_batch_norm``
    for a training-mode ``norm``, its batch count advanced, as
    ``nn.BatchNorm2d`` does (no running statistics: None, None, 0)."""
    if not norm.track_running_stats:
        return None, None, 0.0
    norm.num_batches_tracked.add_(1)
    momentum = norm.momentum
    if momentum is None:  # as nn.BatchNorm2d does: a cumulative average
        momentum = 1.0 / float(norm.num_batches_tracked)
    return norm.running_mean, norm.running_var, momentum
