"""Fusion for any decode head: the boundary map joins the features right
before the head's classifier."""
import torch
from mmcv.cnn import ConvModule

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from .boundary_fusion import BoundaryFusion


@MODELS.register_module()
class ClassifierBoundaryFusion(BoundaryFusion):
    """Before the final classifier (``conv_seg``), the head's features
    (N, channels, h, w) are joined with the boundary map (area-pooled to
    h x w, lifted to ``channels`` by a 1x1 ConvModule) and mixed back to the
    head's width by a 1x1 ConvModule.

    Why there: every mmseg decode head ends in ``cls_seg(features)``, so this
    point exists, with a known width, in all of them (FCN, PSP, UPer,
    SegFormer, ...); the classifier then sees, for every pixel, both the
    semantic features and where the shape stream puts boundaries. Joining at
    the head's input instead would need each head's input layout.

    Args:
        decoder: the wrapped head (a hook is added to its ``conv_seg``).
        channels: width of the boundary branch.
    """

    def __init__(self, decoder, channels: int = 64, init_cfg=None):
        super().__init__(init_cfg)
        if not isinstance(decoder, BaseDecodeHead):
            raise ValueError(f'ClassifierBoundaryFusion needs an mmseg BaseDecodeHead as '
                             f'decoder, got {type(decoder).__name__}')
        cfg = dict(conv_cfg=decoder.conv_cfg, norm_cfg=decoder.norm_cfg,
                   act_cfg=decoder.act_cfg)
        self.branch = ConvModule(1, channels, 1, **cfg)
        self.mix = ConvModule(decoder.channels + channels, decoder.channels, 1, **cfg)
        decoder.conv_seg.register_forward_pre_hook(self._fuse)

    def _fuse(self, module, args):
        feat = args[0]
        b = self.branch(self.boundary_at(feat.shape[-2:]))
        return (self.mix(torch.cat([feat, b], dim=1)), )
