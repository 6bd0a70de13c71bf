"""Fusion of the shape stream's boundary map into a wrapped mmseg decode head.

Both fusions attach to the wrapped head with forward hooks, so the head's own
``forward`` runs unchanged and its parameter names stay those of the plain
model (a baseline checkpoint loads into it). The boundary map for the current
forward pass is handed over with :meth:`BoundaryFusion.attached`.
"""
import contextlib

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.models.decode_heads import ASPPHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize


class BoundaryFusion(BaseModule):
    """Base: keeps the boundary map (N, 1, H_s, W_s) of the running forward."""

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self._boundary = None

    @contextlib.contextmanager
    def attached(self, boundary: Tensor):
        self._boundary = boundary
        try:
            yield
        finally:
            self._boundary = None

    def boundary_at(self, size) -> Tensor:
        """The boundary map averaged down (area) to ``size``."""
        if self._boundary is None:
            raise RuntimeError(
                'the wrapped decode head ran without a boundary map: call it '
                'through GatedShapeHead, not directly')
        b = self._boundary
        if tuple(b.shape[-2:]) == tuple(size):
            return b
        return resize(b, size=tuple(size), mode='area')


class ASPPBoundaryFusion(BoundaryFusion):
    """The paper's fusion for ASPP-family heads (ASPPHead, DeepLabV3+'s
    DepthwiseSeparableASPPHead): the boundary map, area-pooled to the ASPP
    resolution and lifted by a 1x1 ConvModule to ``channels``, becomes one
    more ASPP branch. The head's ``bottleneck`` is rebuilt to take it."""

    def __init__(self, decoder: ASPPHead, channels: int = 64, init_cfg=None):
        super().__init__(init_cfg)
        cfg = dict(conv_cfg=decoder.conv_cfg, norm_cfg=decoder.norm_cfg,
                   act_cfg=decoder.act_cfg)
        self.branch = ConvModule(1, channels, 1, **cfg)
        old = decoder.bottleneck
        decoder.bottleneck = ConvModule(
            old.conv.in_channels + channels, old.conv.out_channels,
            old.conv.kernel_size, padding=old.conv.padding, **cfg)
        decoder.aspp_modules.register_forward_hook(self._append_branch)

    def _append_branch(self, module, args, outputs):
        x = args[0]
        return list(outputs) + [self.branch(self.boundary_at(x.shape[-2:]))]


class ClassifierBoundaryFusion(BoundaryFusion):
    """Generic fusion for any ``BaseDecodeHead``: right before the final
    classifier (``conv_seg``), the head's features (N, channels, h, w) are
    joined with the boundary map (area-pooled to h x w, lifted to
    ``channels_b`` by a 1x1 ConvModule) and mixed back to ``channels`` by a
    1x1 ConvModule.

    Why there: every mmseg decode head ends in ``cls_seg(features)``, so this
    point exists, with a known width, in all of them (FCN, PSP, UPer,
    SegFormer, ...); the classifier then sees, for every pixel, both the
    semantic features and where the shape stream puts boundaries, which is
    what lets it sharpen class transitions. Joining at the head's input
    instead would need each head's input layout (levels, channels).
    """

    def __init__(self, decoder: BaseDecodeHead, channels: int = 64, init_cfg=None):
        super().__init__(init_cfg)
        cfg = dict(conv_cfg=decoder.conv_cfg, norm_cfg=decoder.norm_cfg,
                   act_cfg=decoder.act_cfg)
        self.branch = ConvModule(1, channels, 1, **cfg)
        self.mix = ConvModule(decoder.channels + channels, decoder.channels, 1, **cfg)
        decoder.conv_seg.register_forward_pre_hook(self._fuse)

    def _fuse(self, module, args):
        feat = args[0]
        b = self.branch(self.boundary_at(feat.shape[-2:]))
        return (self.mix(torch.cat([feat, b], dim=1)), )


def build_boundary_fusion(decoder, kind: str = 'auto', channels: int = 64):
    """``kind``: 'aspp', 'classifier' or 'auto' (ASPP for ASPPHead and its
    subclasses, else classifier)."""
    if kind not in ('auto', 'aspp', 'classifier'):
        raise ValueError(f"GatedShapeHead fusion must be 'auto', 'aspp' or "
                         f"'classifier', got {kind!r}")
    if kind == 'auto':
        kind = 'aspp' if isinstance(decoder, ASPPHead) else 'classifier'
    if kind == 'aspp':
        if not isinstance(decoder, ASPPHead):
            raise ValueError(f"GatedShapeHead fusion='aspp' needs an ASPP-family "
                             f"decoder (ASPPHead, DepthwiseSeparableASPPHead), got "
                             f"{type(decoder).__name__}; use fusion='classifier'")
        return ASPPBoundaryFusion(decoder, channels)
    if not isinstance(decoder, BaseDecodeHead):
        raise ValueError(f'GatedShapeHead fusion needs an mmseg BaseDecodeHead as '
                         f'decoder, got {type(decoder).__name__}')
    return ClassifierBoundaryFusion(decoder, channels)
