"""Gated convolution layer (GCL) of Gated-SCNN."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from mmseg.registry import MODELS


@MODELS.register_module()
class GatedSpatialConv(BaseModule):
    """Gated convolution layer: regular-stream features gate shape features.

    ``alpha = sigmoid(net(cat(x, gate)))`` with ``net`` = norm -> 1x1 conv ->
    ReLU -> 1x1 conv to one channel -> norm; the output is
    ``conv(x * (1 + alpha))``. With ``alpha = 0`` this is ``conv(x)``.

    Args:
        in_channels: channels C of the shape-stream features.
        out_channels: channels of the output.
        kernel_size: kernel of the output convolution (odd; 'same' padding).
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs; ``norm_cfg`` may be
            ``dict(type='SyncBN')`` for distributed training.

    Shapes: x (N, C, H, W), gate (N, 1, H, W) -> (N, out_channels, H, W).
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

    def forward(self, x: Tensor, gate: Tensor) -> Tensor:
        if gate.shape[1] != 1 or gate.shape[-2:] != x.shape[-2:] or gate.shape[0] != x.shape[0]:
            raise ValueError(f'GatedSpatialConv: gate must be (N, 1, H, W) matching x '
                             f'{tuple(x.shape)}, got {tuple(gate.shape)}')
        alpha = self.attention(torch.cat([x, gate], dim=1))
        return self.conv(torch.addcmul(x, x, alpha))  # x * (1 + alpha), one pass
