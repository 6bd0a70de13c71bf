"""Convolution, bias, residual add and ReLU as one operator at inference
(:mod:`mmgscnn.models.utils.conv_act`), once the batch norms are folded
(:func:`mmgscnn.deploy.fuse_bn.fuse_bn` calls :func:`fuse_conv_act`).

Rewritten, in place (the module's class is swapped for a subclass whose
forward calls the fused op; parameters, buffers and ``state_dict`` keys do
not change):

- every mmcv ``ConvModule`` (exactly that class) in order conv -> norm ->
  act whose norm is folded (``nn.Identity``) or absent, whose conv is a
  plain ``nn.Conv2d`` with zero padding and one group, and whose act is
  ``nn.ReLU``: ``relu(conv(x) + b)``;
- every mmseg ``BasicBlock`` whose two norms are folded (no checkpointing):
  ``conv1 -> ReLU`` as above and ``conv2 + identity -> ReLU`` as one op
  (the identity is ``x`` or ``downsample(x)``, run as before).

Grouped (depthwise) convolutions are left alone: cuDNN is not the fastest
depthwise kernel. The shape stream's ``stem`` is left to the stream itself.
"""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.backbones.resnet import BasicBlock

from mmgscnn.models.utils.conv_act import conv2d_add_relu, conv2d_relu, probe_cudnn_fusion


def _plain_conv(conv: nn.Module) -> bool:
    """An nn.Conv2d that the fused op computes exactly: zero padding given
    as numbers, one group."""
    return (type(conv) is nn.Conv2d and conv.padding_mode == 'zeros'
            and isinstance(conv.padding, tuple) and conv.groups == 1)


def _conv_args(conv: nn.Conv2d):
    return conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups


class FusedConvReLUModule(ConvModule):
    """A ConvModule whose folded conv -> ReLU runs as one op (inference)."""

    def forward(self, x, activate: bool = True, norm: bool = True):
        if not activate:
            return super().forward(x, activate=activate, norm=norm)
        weight, bias, *conv = _conv_args(self.conv)
        return conv2d_relu(x, weight, bias, *conv)


class FusedBasicBlock(BasicBlock):
    """A BasicBlock with folded norms: two ops, conv1 + ReLU and
    conv2 + identity + ReLU (inference)."""

    def forward(self, x):
        weight, bias, *conv = _conv_args(self.conv1)
        out = conv2d_relu(x, weight, bias, *conv)
        identity = x if self.downsample is None else self.downsample(x)
        weight, bias, *conv = _conv_args(self.conv2)
        return conv2d_add_relu(out, weight, bias, identity, *conv)


def _fusable_conv_module(m: nn.Module) -> bool:
    return (type(m) is ConvModule and tuple(m.order) == ('conv', 'norm', 'act')
            and (not m.with_norm or isinstance(m.norm, nn.Identity))
            and not m.with_explicit_padding and _plain_conv(m.conv)
            and m.with_activation and type(m.activate) is nn.ReLU)


def _fusable_basic_block(m: nn.Module) -> bool:
    return ((type(m) is BasicBlock or getattr(type(m), 'fuses_like_basic_block', False))
            and isinstance(m.norm1, nn.Identity)
            and isinstance(m.norm2, nn.Identity) and not m.with_cp
            and _plain_conv(m.conv1) and _plain_conv(m.conv2) and type(m.relu) is nn.ReLU)


def _stream_stems(model: nn.Module) -> set:
    """ids of the shape streams' stems (the stream fuses its own)."""
    from mmgscnn.models.shape_stream.shape_stream import ShapeStream
    return {id(m.stem) for m in model.modules()
            if isinstance(m, ShapeStream) and getattr(m, 'stem', None) is not None}


@torch.no_grad()
def fuse_conv_act(model: nn.Module) -> dict:
    """Make ``model``'s folded conv -> ReLU modules and BasicBlocks run the
    fused operators, in place (eval mode, inference only); probes the cuDNN
    fused kernels once per CUDA device of the model. Returns the qualified
    names of the rewritten modules: dict(conv_relu=[...], basic_block=[...])."""
    model.eval()
    skip = _stream_stems(model)
    done = dict(conv_relu=[], basic_block=[])
    for name, m in model.named_modules():
        if id(m) in skip:
            continue
        if _fusable_conv_module(m):
            m.__class__ = FusedConvReLUModule
            done['conv_relu'].append(name)
        elif _fusable_basic_block(m):
            m.__class__ = FusedBasicBlock
            done['basic_block'].append(name)
    if done['conv_relu'] or done['basic_block']:
        for device in {p.device for p in model.parameters()}:
            probe_cudnn_fusion(device)
    return done
