"""Shape stream of Gated-SCNN."""
from typing import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmseg.models.backbones.resnet import BasicBlock
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from .gated_spatial_conv import GatedSpatialConv
from .image_gradient import ImageGradient


@MODELS.register_module()
class ShapeStream(BaseModule):
    """Boundary stream at high resolution, gated by the regular stream.

    The fine backbone level ``in_index`` is reduced to ``channels[0]`` by a
    1x1 conv and upsampled to the stream's resolution; then, for each gating
    level ``gate_indices[i]``: a residual block at ``channels[i]``, a 1x1 conv
    to ``channels[i + 1]`` and a :class:`GatedSpatialConv` gated by that
    level (a 1x1 conv to one channel, upsampled). A 1x1 conv gives the
    boundary logits. The fused boundary map is
    ``sigmoid(conv1x1(cat(sigmoid(logits), image_gradient)))``.

    Args:
        in_channels: channels of every feature level the segmentor gives the
            head (for a ResNet, its 4 stages: ``[256, 512, 1024, 2048]``).
        in_index: level feeding the stream (the finest, usually 0).
        gate_indices: levels whose features gate the stream, fine to coarse.
        channels: stream widths, ``len(gate_indices) + 1`` of them.
        stride: output stride relative to the input image (1 = full
            resolution as in the paper; 2 or 4 are cheaper).
        image_gradient: kwargs of :class:`ImageGradient` (``method='sobel'``
            or ``'canny'``).
        gcl_kernel_size: kernel of the GCL output convolution.
        with_cp: gradient checkpointing of every residual block and every
            gated convolution: their inner full-resolution activations are
            recomputed in the backward pass instead of being kept (less
            training memory, one more forward of the stream; BN running
            statistics are then updated twice per step, as with mmcv's
            ``with_cp``). On by default: at full resolution the stream's
            activations are what it costs in memory (measured on the CPU with
            ResNet-18-D8 at 256x512: its extra peak memory fell from 1339 to
            450 MiB for 9 % more step time); ``False`` is faster when memory
            is plentiful.
        align_corners: for the upsampling of features and gates.
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs.

    Forward: ``feats`` (list of (N, C_l, H_l, W_l)) and ``image`` (N, 3, H, W)
    in pixel units -> ``(logits, fused)``, each (N, 1, ceil(H/stride),
    ceil(W/stride)); ``logits`` are boundary logits, ``fused`` is in [0, 1].
    """

    def __init__(self, in_channels: Sequence[int], in_index: int = 0,
                 gate_indices: Sequence[int] = (1, 2, 3),
                 channels: Sequence[int] = (64, 32, 16, 8), stride: int = 1,
                 image_gradient=dict(method='sobel'), gcl_kernel_size: int = 1,
                 with_cp: bool = True, align_corners: bool = False,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'),
                 init_cfg=dict(type='Normal', std=0.01, override=dict(name='classifier'))):
        # The boundary classifier starts near zero, like mmseg's conv_seg, so the
        # first steps' boundary loss and gradients are small (no blow-up).
        super().__init__(init_cfg)
        self.in_channels = self._check_config(in_channels, in_index, gate_indices,
                                              channels, stride)
        self.in_index = in_index
        self.gate_indices = tuple(gate_indices)
        self.channels = tuple(channels)
        self.stride = stride
        self.with_cp = with_cp
        self.align_corners = align_corners

        self.input_conv = ConvModule(self.in_channels[in_index], channels[0], 1,
                                     conv_cfg=conv_cfg, norm_cfg=None, act_cfg=None)
        self.blocks = nn.ModuleList()
        self.reduces = nn.ModuleList()
        self.gate_convs = nn.ModuleList()
        self.gates = nn.ModuleList()
        for i, level in enumerate(self.gate_indices):
            c_in, c_out = channels[i], channels[i + 1]
            self.blocks.append(BasicBlock(c_in, c_in, conv_cfg=conv_cfg,
                                          norm_cfg=norm_cfg))
            self.reduces.append(ConvModule(c_in, c_out, 1, conv_cfg=conv_cfg,
                                           norm_cfg=None, act_cfg=None))
            # no bias: the GCL normalises its input, which would cancel it
            self.gate_convs.append(ConvModule(self.in_channels[level], 1, 1, bias=False,
                                              conv_cfg=conv_cfg, norm_cfg=None,
                                              act_cfg=None))
            self.gates.append(GatedSpatialConv(c_out, c_out, gcl_kernel_size,
                                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                               act_cfg=act_cfg))
        self.classifier = nn.Conv2d(channels[-1], 1, 1, bias=False)
        self.image_gradient = ImageGradient(**(image_gradient or {}))
        self.fuse = nn.Conv2d(2, 1, 1, bias=False)

    @staticmethod
    def _check_config(in_channels, in_index, gate_indices, channels, stride):
        in_channels = [int(c) for c in in_channels]
        n = len(in_channels)
        for name, idx in [('in_index', in_index)] + [('gate_indices', g) for g in gate_indices]:
            if not isinstance(idx, int) or not 0 <= idx < n:
                raise ValueError(
                    f'shape_stream.{name}: level {idx!r} does not exist; '
                    f'shape_stream.in_channels lists {n} levels ({in_channels}), '
                    f'so indices must be in 0..{n - 1}')
        if len(gate_indices) < 1:
            raise ValueError('shape_stream.gate_indices must name at least one level')
        if len(channels) != len(gate_indices) + 1:
            raise ValueError(
                f'shape_stream.channels needs len(gate_indices) + 1 = '
                f'{len(gate_indices) + 1} widths, got {list(channels)}')
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f'shape_stream.stride must be an integer >= 1, got {stride!r}')
        return in_channels

    def check_inputs(self, feats: Sequence[Tensor]) -> None:
        """Raise a ValueError naming the config key when ``feats`` do not match
        ``in_channels`` (number of levels or channels per level)."""
        got = [int(f.shape[1]) for f in feats]
        if len(got) != len(self.in_channels):
            raise ValueError(
                f'shape_stream.in_channels lists {len(self.in_channels)} levels '
                f'{self.in_channels}, but the backbone (and neck) give {len(got)} '
                f'levels with channels {got}: set shape_stream.in_channels={got}')
        if got != self.in_channels:
            raise ValueError(
                f'shape_stream.in_channels={self.in_channels} does not match the '
                f'channels the backbone (and neck) give: {got}; set '
                f'shape_stream.in_channels={got}')

    def output_size(self, image_size) -> tuple:
        """(H_s, W_s) = ceil of the image size divided by ``stride``."""
        h, w = image_size
        s = self.stride
        return (h + s - 1) // s, (w + s - 1) // s

    def _maybe_checkpoint(self, fn, *args):
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _gated(self, i: int, x: Tensor, level: Tensor, size) -> Tensor:
        """Reduce ``x`` and gate it with ``level`` (GCL ``i``)."""
        gate = resize(self.gate_convs[i](level), size=size, mode='bilinear',
                      align_corners=self.align_corners)
        return self.gates[i](self.reduces[i](x), gate)

    def forward(self, feats: Sequence[Tensor], image: Tensor) -> tuple:
        self.check_inputs(feats)
        size = self.output_size(image.shape[-2:])
        x = resize(self.input_conv(feats[self.in_index]), size=size, mode='bilinear',
                   align_corners=self.align_corners)
        for i, level in enumerate(self.gate_indices):
            x = self._maybe_checkpoint(self.blocks[i], x)
            x = self._maybe_checkpoint(self._gated, i, x, feats[level], size)
        logits = self.classifier(x)
        if self.stride > 1:
            image = resize(image, size=size, mode='area')
        grad = self.image_gradient(image).to(logits.dtype)
        fused = torch.sigmoid(self.fuse(torch.cat([torch.sigmoid(logits), grad], 1)))
        return logits, fused
