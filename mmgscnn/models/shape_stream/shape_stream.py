"""Shape stream of Gated-SCNN."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmseg.models.utils import resize
from mmseg.registry import MODELS
from ...utils.config_errors import ConfigError
from ..utils import upsample_bilinear
from ..utils.conv_act import conv2d_relu
from .gated_spatial_conv import GatedSpatialConv
from .image_gradient import ImageGradient
from .recomputing_block import RecomputingBasicBlock


def consistent_levels(in_channels: Sequence[int], in_index: int,
                      gate_indices: Sequence[int], channels: Sequence[int]) -> str:
    """Shape-stream settings that fit a backbone giving ``in_channels``:
    the finest level as input, the last ``len(gate_indices)`` levels after
    it as gates (fewer, and ``channels`` cut to match, when there are not
    enough levels), e.g. ``in_channels=[128, 256, 512], in_index=0,
    gate_indices=(1, 2), channels=(64, 32, 16)``."""
    n, k = len(in_channels), len(gate_indices)
    gates = tuple(range(n - k, n)) if n - 1 >= k else tuple(range(1, n)) or (0, )
    text = (f'shape_stream.in_channels={list(in_channels)}, in_index=0, '
            f'gate_indices={gates}')
    if len(gates) != k:
        text += f', channels={tuple(channels)[:len(gates) + 1]}'
    return text


def _channels_last_pays_off(x: Tensor) -> bool:
    """Whether the stream keeps ``x`` channels-last: on CUDA (cuDNN's
    tensor-core convolutions work in that layout)."""
    return x.is_cuda


class _SplitChannels(torch.autograd.Function):
    """(N, K, H, W) -> K views (N, 1, H, W); backward: their gradients
    joined by one concatenation, written in ``x``'s layout (autograd would
    add K zero-padded copies; the gradient of an unused view arrives as
    zeros)."""

    @staticmethod
    def forward(ctx, x: Tensor):
        ctx.layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                      and not x.is_contiguous() else torch.contiguous_format)
        return tuple(x[:, k:k + 1] for k in range(x.shape[1]))

    @staticmethod
    def backward(ctx, *grads):
        n, _, h, w = grads[0].shape
        out = torch.empty((n, len(grads), h, w), dtype=grads[0].dtype,
                          device=grads[0].device, memory_format=ctx.layout)
        return torch.cat(grads, dim=1, out=out)


def split_channels(x: Tensor) -> tuple:
    """The channels of (N, K, H, W) as K maps (N, 1, H, W) (views), whose
    gradients reach ``x`` in one concatenation."""
    if (torch.is_grad_enabled() and x.requires_grad
            and not torch.compiler.is_compiling()):  # Inductor fuses the slices itself
        return _SplitChannels.apply(x)
    return tuple(x[:, k:k + 1] for k in range(x.shape[1]))


@MODELS.register_module()
class ShapeStream(BaseModule):
    """Boundary stream at high resolution, gated by the regular stream.

    Stages ``i = 0 .. len(gate_indices) - 1``: a residual block at width
    ``channels[i]``, a 1x1 conv to ``channels[i + 1]`` and a
    :class:`GatedSpatialConv` gated by backbone level ``gate_indices[i]``
    (that level reduced to one channel by a 1x1 conv and enlarged
    bilinearly). The stream starts from level ``in_index`` reduced to
    ``channels[0]`` by a 1x1 conv, and a 1x1 conv gives the boundary
    logits. The fused boundary map handed to the decoder is
    ``sigmoid(conv1x1(cat(sigmoid(logits), image_gradient)))``.

    Where the stream reaches its output resolution (``stride``):

    - ``first_block_low_res=True`` (default): the first, widest residual
      block runs at the resolution of level ``in_index`` (stride 4 in mmseg's
      ResNets) and the features are enlarged after its 1x1 reduction. That
      level carries no finer detail than its own resolution, so a 3x3 block
      sees a 4x wider context there at 1/16 of the full-resolution cost.
    - ``first_block_low_res=False``: the level is enlarged first and every
      block runs at the output resolution (the official code's layout).

    Full-resolution information enters through the stem (``stem_channels >
    0``): a 3x3 ConvModule on the image (0..1) and its gradient map, whose
    output is joined to the stream's features at the first gated
    convolution.

    Args:
        in_channels: channels of every feature level the segmentor gives the
            head (for a ResNet, its 4 stages: ``[256, 512, 1024, 2048]``).
        in_index: level feeding the stream (the finest, usually 0).
        gate_indices: levels whose features gate the stream, fine to coarse.
        channels: stream widths, ``len(gate_indices) + 1`` of them.
        stride: output stride relative to the input image (1 = full
            resolution as in the paper; 2 or 4 are cheaper).
        first_block_low_res: see above.
        stem_channels: width of the full-resolution stem; 0 disables it.
        image_gradient: kwargs of :class:`ImageGradient` (``method='sobel'``
            or ``'canny'``).
        gcl_kernel_size: kernel of the GCL output convolution.
        with_cp: gradient checkpointing of every residual block and gated
            convolution (their inner activations are recomputed in the
            backward pass: less memory, more time; BN running statistics are
            then updated twice per step, as with mmcv's ``with_cp``); the
            enlarged one-channel gates are made before and kept.
        channels_last: run the stream's convolutions in the channels-last
            memory format on CUDA (what cuDNN's tensor-core kernels use, so no
            layout conversions around each convolution).
        align_corners: for the enlargement of features and gates.
        conv_cfg, norm_cfg, act_cfg: mmcv layer configs.

    Forward: ``feats`` (list of (N, C_l, H_l, W_l)), ``image`` (N, 3, H, W)
    in pixel units, or normalised with ``pixel_affine=(scale, shift)`` (3
    values each: ``pixels = image * scale + shift``, e.g. the data
    preprocessor's std and mean), and optionally ``image_valid`` (N, 1, H,
    W) bool, False on padding -> ``(logits, fused)``, each (N, 1,
    ceil(H/stride), ceil(W/stride)); ``logits`` are boundary logits,
    ``fused`` is in [0, 1]. The gradient map carries no gradient; with a
    stem, ``image`` gets one through the stem's pixel input.
    """

    def __init__(self, in_channels: Sequence[int], in_index: int = 0,
                 gate_indices: Sequence[int] = (1, 2, 3),
                 channels: Sequence[int] = (64, 32, 16, 8), stride: int = 1,
                 first_block_low_res: bool = True, stem_channels: int = 8,
                 image_gradient=dict(method='sobel'), gcl_kernel_size: int = 1,
                 with_cp: bool = False, channels_last: bool = True,
                 align_corners: bool = False, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 init_cfg=dict(type='Normal', std=0.01, override=dict(name='classifier'))):
        # The boundary classifier starts near zero, like mmseg's conv_seg, so the
        # first steps' boundary loss and gradients are small (no blow-up).
        super().__init__(init_cfg)
        self.in_channels = self._check_config(in_channels, in_index, gate_indices,
                                              channels, stride, stem_channels)
        self.in_index = in_index
        self.gate_indices = tuple(gate_indices)
        self.channels = tuple(channels)
        self.stride = stride
        self.first_block_low_res = bool(first_block_low_res)
        self.with_cp = with_cp
        self.channels_last = channels_last
        self.align_corners = align_corners
        layer = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.input_conv = ConvModule(self.in_channels[in_index], channels[0], 1,
                                     conv_cfg=conv_cfg, norm_cfg=None, act_cfg=None)
        self.stem = (ConvModule(4, stem_channels, 3, padding=1, **layer)
                     if stem_channels else None)
        self.blocks = nn.ModuleList()
        self.reduces = nn.ModuleList()
        self.gate_convs = nn.ModuleList()
        self.gates = nn.ModuleList()
        for i, level in enumerate(self.gate_indices):
            c_in, c_out = channels[i], channels[i + 1]
            self.blocks.append(RecomputingBasicBlock(c_in, c_in, conv_cfg=conv_cfg,
                                                     norm_cfg=norm_cfg))
            self.reduces.append(ConvModule(c_in, c_out, 1, conv_cfg=conv_cfg,
                                           norm_cfg=None, act_cfg=None))
            # no bias: the GCL normalises its input, which would cancel it
            self.gate_convs.append(ConvModule(self.in_channels[level], 1, 1, bias=False,
                                              conv_cfg=conv_cfg, norm_cfg=None,
                                              act_cfg=None))
            gcl_in = c_out + (stem_channels if i == 0 else 0)
            self.gates.append(GatedSpatialConv(gcl_in, c_out, gcl_kernel_size,
                                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                               act_cfg=act_cfg))
        self.classifier = nn.Conv2d(channels[-1], 1, 1, bias=False)
        self.image_gradient = ImageGradient(**(image_gradient or {}))
        self.fuse = nn.Conv2d(2, 1, 1, bias=False)

    @staticmethod
    def _check_config(in_channels, in_index, gate_indices, channels, stride,
                      stem_channels):
        in_channels = [int(c) for c in in_channels]
        n = len(in_channels)
        for name, idx in [('in_index', in_index)] + [('gate_indices', g) for g in gate_indices]:
            if not isinstance(idx, int) or not 0 <= idx < n:
                raise ConfigError(
                    f'shape_stream.{name}: level {idx!r} does not exist; '
                    f'shape_stream.in_channels lists {n} levels ({in_channels}), '
                    f'so indices must be in 0..{n - 1}; consistent settings: '
                    + consistent_levels(in_channels, in_index, gate_indices, channels))
        if len(gate_indices) < 1:
            raise ValueError('shape_stream.gate_indices must name at least one level')
        if len(channels) != len(gate_indices) + 1:
            raise ValueError(
                f'shape_stream.channels needs len(gate_indices) + 1 = '
                f'{len(gate_indices) + 1} widths, got {list(channels)}')
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f'shape_stream.stride must be an integer >= 1, got {stride!r}')
        if not isinstance(stem_channels, int) or stem_channels < 0:
            raise ValueError('shape_stream.stem_channels must be an integer >= 0 (0: no '
                             f'stem), got {stem_channels!r}')
        return in_channels

    def check_inputs(self, feats: Sequence[Tensor]) -> None:
        """Raise a ValueError naming the config key when ``feats`` do not match
        ``in_channels`` (number of levels or channels per level)."""
        got = [int(f.shape[1]) for f in feats]
        if len(got) != len(self.in_channels):
            raise ConfigError(
                f'shape_stream.in_channels lists {len(self.in_channels)} levels '
                f'{self.in_channels}, but the backbone (and neck) give {len(got)} '
                f'levels with channels {got}: set ' + consistent_levels(
                    got, self.in_index, self.gate_indices, self.channels))
        if got != self.in_channels:
            raise ConfigError(
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

    def _layout(self, x: Tensor) -> Tensor:
        if self.channels_last and _channels_last_pays_off(x):
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _enlarge(self, x: Tensor, size) -> Tensor:
        return self._layout(upsample_bilinear(x, size, self.align_corners))

    def _gate_maps(self, feats: Sequence[Tensor], size) -> list:
        """The GCLs' gates: level ``gate_indices[i]`` reduced to one channel
        by ``gate_convs[i]`` and enlarged to ``size``, (N, 1, H_s, W_s) each.
        Gates from levels of the same resolution (e.g. the three of a
        dilated ResNet, all at stride 8) are enlarged together, as the
        channels of one planar map (:func:`split_channels`): one kernel
        instead of one per gate, forward and backward. Same values."""
        lows = [self.gate_convs[i](feats[level]) for i, level in enumerate(self.gate_indices)]
        gates = [None] * len(lows)
        groups = {}
        for i, low in enumerate(lows):
            if tuple(low.shape[-2:]) == tuple(size):
                gates[i] = self._layout(low)
            else:
                groups.setdefault((tuple(low.shape[-2:]), low.dtype), []).append(i)
        for members in groups.values():
            if len(members) == 1:
                gates[members[0]] = self._enlarge(lows[members[0]], size)
                continue
            # planar (NCHW): each gate a contiguous plane per image, read by
            # the GCL's concatenation as a separate gate would be
            joint = upsample_bilinear(torch.cat([lows[i] for i in members], dim=1).contiguous(),
                                      size, self.align_corners)
            for i, gate in zip(members, split_channels(joint)):
                gates[i] = gate
        return gates

    def _gated(self, i: int, x: Tensor, gate: Tensor, size, extra: Optional[Tensor]) -> Tensor:
        """Reduce ``x``, enlarge it if still below ``size``, join ``extra``
        (stem features) and gate it with ``gate`` (GCL ``i``)."""
        x = self.reduces[i](x)
        if tuple(x.shape[-2:]) != tuple(size):
            x = self._enlarge(x, size)
        return self.gates[i](x, gate, extra)

    def image_inputs(self, image: Tensor, size, image_valid: Optional[Tensor] = None,
                     pixel_affine: Optional[tuple] = None) -> tuple:
        """Image and gradient map at the stream's resolution:
        ``(pixels / 255, gradient)``, (N, 3, H_s, W_s) and (N, 1, H_s, W_s).

        ``image`` (N, 3, H, W) is in pixel units, or ``pixels = image *
        scale + shift`` with ``pixel_affine=(scale, shift)`` (per channel).
        ``image_valid`` (N, 1, H, W) bool marks real pixels; the gradient is
        zeroed where its window reaches padding, so the padding border is
        no edge."""
        buf = self._image_buffer(image, size, image_valid, pixel_affine)
        return buf[:, :3] / 255.0, buf[:, 3:4]

    def _image_buffer(self, image: Tensor, size, image_valid: Optional[Tensor] = None,
                      pixel_affine: Optional[tuple] = None) -> Tensor:
        """(N, 3 + 1 + k, H_s, W_s): the pixels (0..255), the gradient map
        (channel 3) and ``k`` scratch channels
        (:meth:`ImageGradient.with_pixels`), made from the image as given
        (area-averaged to ``size`` first when smaller): the normalisation is
        undone inside the gradient's convolution, not by full-resolution
        passes of its own."""
        if tuple(image.shape[-2:]) != tuple(size):
            image = resize(image, size=size, mode='area')
            if image_valid is not None:
                image_valid = resize(image_valid.to(image.dtype), size=size,
                                     mode='area') >= 1
        buf = self.image_gradient.with_pixels(
            image, *(pixel_affine or (None, None)),
            channels_last=self.channels_last and _channels_last_pays_off(image))
        if image_valid is not None:
            r = self.image_gradient.footprint
            padding = (~image_valid).to(buf.dtype)
            buf[:, 3:4].mul_(F.max_pool2d(padding, 2 * r + 1, 1, r) == 0)
        return buf

    def _stem(self, buf: Tensor, dtype) -> Tensor:
        """``stem(cat(pixels / 255, gradient))`` from the image buffer
        (:meth:`_image_buffer`); for a plain conv -> norm -> act ConvModule the
        convolution reads the buffer itself, with the 1/255 on its pixel
        weights and zero weights on the scratch channels (no
        full-resolution pass for either)."""
        stem = self.stem
        if (type(stem.conv) is not nn.Conv2d or stem.with_explicit_padding
                or stem.order != ('conv', 'norm', 'act')):
            inputs = torch.cat([buf[:, :3] / 255.0, buf[:, 3:4]], dim=1)
            return stem(self._layout(inputs.to(dtype)))
        weight = stem.conv.weight  # input channels: pixels (3), gradient (1)
        weight = torch.cat([weight[:, :3] / 255.0, weight[:, 3:],
                            weight.new_zeros(weight.shape[0], buf.shape[1] - 4,
                                             *weight.shape[2:])], dim=1)
        inputs = self._layout(buf.to(dtype))
        if self._stem_fuses_relu():  # inference, norm folded: one conv + ReLU kernel
            conv = stem.conv
            return conv2d_relu(inputs, weight, conv.bias, conv.stride, conv.padding,
                               conv.dilation, conv.groups)
        x = stem.conv._conv_forward(inputs, weight, stem.conv.bias)
        if stem.with_norm:
            x = stem.norm(x)
        return stem.activate(x) if stem.with_activation else x

    def _stem_fuses_relu(self) -> bool:
        """Whether the stem runs as one :func:`conv2d_relu`: without grad,
        its norm folded (``mmgscnn.deploy.fuse_bn``) or absent, a ReLU, zero
        padding, and not while exporting (no ONNX form for the operator)."""
        stem = self.stem
        return (not torch.is_grad_enabled() and stem.with_activation
                and type(stem.activate) is nn.ReLU and stem.conv.padding_mode == 'zeros'
                and (not stem.with_norm or isinstance(stem.norm, nn.Identity))
                and not (torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()))

    def forward(self, feats: Sequence[Tensor], image: Tensor,
                image_valid: Optional[Tensor] = None,
                pixel_affine: Optional[tuple] = None) -> tuple:
        self.check_inputs(feats)
        size = self.output_size(image.shape[-2:])
        x = self._layout(self.input_conv(feats[self.in_index]))
        if not self.first_block_low_res:
            x = self._enlarge(x, size)
        # without a stem nothing learned reads the pixels: no gradient to the image
        buf = self._image_buffer(image if self.stem is not None else image.detach(), size,
                                 image_valid, pixel_affine)
        grad = buf[:, 3:4]
        stem = None if self.stem is None else self._stem(buf, x.dtype)
        gates = self._gate_maps(feats, size)
        for i in range(len(self.gate_indices)):
            x = self._maybe_checkpoint(self.blocks[i], x)
            x = self._maybe_checkpoint(self._gated, i, x, gates[i], size,
                                       stem if i == 0 else None)
        logits = self.classifier(x)
        fused = torch.sigmoid(self.fuse(torch.cat([torch.sigmoid(logits),
                                                   grad.to(logits.dtype)], 1)))
        return logits, fused
