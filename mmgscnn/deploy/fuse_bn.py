"""Batch norms folded into convolutions, for inference only (eval mode, the
running statistics): mmcv's :func:`~mmcv.cnn.fuse_conv_bn` for every
conv -> BN pair, and, by hand, the norm that the gated convolution layer
(GCL) applies to ``cat(x, gate)`` *before* its first 1x1 convolution.

A norm before a 1x1 convolution (stride 1, no padding, one group) folds
exactly: with ``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``
per input channel, ``conv(W, b)(s * z + t) = conv(W * s, b + W @ t)(z)``.
With zero padding or a larger kernel the border pixels would differ, so
those are left as they are. A folded norm becomes ``nn.Identity``.
"""
import torch
import torch.nn as nn
from mmcv.cnn.utils import fuse_conv_bn
from mmengine.hooks import Hook
from torch.nn.modules.batchnorm import _BatchNorm

from mmgscnn.models.shape_stream.norm_conv import conv_after_norm, norm_folds_into


@torch.no_grad()
def fold_norm_into_next_conv(norm: _BatchNorm, conv: nn.Conv2d) -> None:
    """Fold eval-mode ``norm`` (C channels) into the 1x1 ``conv`` (C inputs)
    that follows it, in place: ``conv(norm(z)) == conv'(z)``."""
    if not norm_folds_into(conv):
        raise ValueError(f'a norm folds exactly only into a 1x1 conv (stride 1, no padding, '
                         f'one group), got {conv}')
    if not norm.track_running_stats or norm.running_mean is None:
        raise ValueError(f'{norm} keeps no running statistics: nothing to fold')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.affine:
        shift = shift + norm.bias
    weight = conv.weight  # (out, C, 1, 1)
    bias = weight.flatten(1) @ shift.to(weight.dtype)
    if conv.bias is not None:
        bias = bias + conv.bias
    conv.weight = nn.Parameter(weight * scale.to(weight.dtype).view(1, -1, 1, 1))
    conv.bias = nn.Parameter(bias)


def fuse_gcl_input_norm(gcl: nn.Module) -> bool:
    """Fold the norm on ``cat(x, gate)`` of a GatedSpatialConv's attention
    (``attention[0]``) into the 1x1 ConvModule after it (``attention[1]``).
    Returns whether it was folded: only this exact structure is (anything
    else is left unfused, which the tests detect as a norm left over)."""
    attention = getattr(gcl, 'attention', None)
    if not isinstance(attention, nn.Sequential) or len(attention) < 2:
        return False
    norm, conv = attention[0], conv_after_norm(attention[1])
    if not isinstance(norm, _BatchNorm) or conv is None:
        return False
    fold_norm_into_next_conv(norm, conv)
    attention[0] = nn.Identity()
    return True


def fuse_bn(model: nn.Module, conv_act: bool = True) -> nn.Module:
    """Fold the batch norms of ``model`` (switched to eval mode) into its
    convolutions, in place, for inference; returns ``model``. The GCLs'
    input norms by hand (:func:`fuse_gcl_input_norm`), every conv -> BN pair
    by mmcv. ``conv_act``: then run each folded conv -> ReLU (and BasicBlock
    conv -> add -> ReLU) as one operator
    (:func:`~mmgscnn.deploy.fuse_conv_act.fuse_conv_act`); False keeps plain
    aten ops (ONNX export). The result is for inference only: with
    ``conv_act`` it refuses to run with grad enabled, and training it would
    train without norms."""
    from mmgscnn.models.shape_stream.gated_spatial_conv import GatedSpatialConv

    from .fuse_conv_act import fuse_conv_act

    model.eval()
    for module in model.modules():
        if isinstance(module, GatedSpatialConv):
            fuse_gcl_input_norm(module)
    fuse_conv_bn(model)
    if conv_act:
        fuse_conv_act(model)
    return model


def remaining_norms(model: nn.Module) -> list:
    """Names of the batch norms of ``model`` that are still there."""
    return [name for name, m in model.named_modules() if isinstance(m, _BatchNorm)]


class FuseBNHook(Hook):
    """Folds the model's batch norms and fuses conv -> ReLU (:func:`fuse_bn`)
    once the checkpoint is loaded, before testing (``tools/test.py``
    registers it)."""

    def before_test(self, runner) -> None:
        fuse_bn(runner.model)
