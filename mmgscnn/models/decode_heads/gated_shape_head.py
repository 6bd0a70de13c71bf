"""Decode head that adds Gated-SCNN's shape stream to any mmseg decode head."""
import contextlib
import copy
from typing import List

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor
from torch.profiler import record_function

from mmseg.registry import MODELS
from ..shape_stream import ImageGradient, boundary_target, default_fusion_type
from ...utils.kwargs_check import check_dict_keys, check_keys
from ..losses import BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss
from ..losses.utils import upcast
from ..utils import upsample_bilinear
from ..utils.regional_compile import (check_device, compile_module, compile_settings,
                                      compiled_function, region_settings, uses_cuda_graphs)

_OWN_PREFIXES = ('decoder.', 'shape_stream.', 'fusion.')


@contextlib.contextmanager
def _no_identity_resize():
    """While the decoder's ``loss_by_feat`` runs on logits that are already
    at the label size, mmseg's ``resize`` there returns them as they are
    instead of an identity interpolation (a copy forward and, on CUDA, an
    atomic-add kernel backward). Exact: a resize to the same size is the
    identity in every mode."""
    from mmseg.models.decode_heads import decode_head
    original = decode_head.resize

    def resize_unless_same(input, size=None, *args, **kwargs):
        if size is not None and tuple(input.shape[-2:]) == tuple(int(x) for x in size):
            return input
        return original(input, size, *args, **kwargs)

    decode_head.resize = resize_unless_same
    try:
        yield
    finally:
        decode_head.resize = original


@contextlib.contextmanager
def _stacked_labels(decoder, batch_data_samples, stacked: Tensor):
    """While the decoder's ``loss_by_feat`` runs, its ``_stack_batch_gt`` of
    the same samples returns the labels stacked already, (N, 1, H, W),
    instead of stacking them again (one full-resolution copy less)."""
    own = decoder.__dict__.get('_stack_batch_gt')
    original = decoder._stack_batch_gt

    def stack_once(samples):
        return stacked if samples is batch_data_samples else original(samples)

    decoder._stack_batch_gt = stack_once
    try:
        yield
    finally:
        if own is None:
            del decoder._stack_batch_gt  # the class's method again
        else:
            decoder._stack_batch_gt = own


class _CrossEntropyKeepingLogProbs:
    """``torch.nn.functional`` as mmseg's cross-entropy sees it while
    :func:`_shared_log_softmax` is active: ``cross_entropy`` of ``logits``
    with class-index targets runs as ``nll_loss(log_softmax(logits))`` (the
    two operators aten's ``cross_entropy`` runs, with autocast's float32
    cast of its input: same values and gradients) and keeps the first
    log-probabilities in ``log_probs``. Anything else goes to
    ``torch.nn.functional`` unchanged."""

    def __init__(self, logits: Tensor, functional):
        self._logits = logits
        self._functional = functional
        self.log_probs = None

    def __getattr__(self, name):
        return getattr(self._functional, name)

    def cross_entropy(self, input, target, weight=None, size_average=None,
                      ignore_index=-100, reduce=None, reduction='mean', label_smoothing=0.0):
        F = self._functional
        if (input is not self._logits or self.log_probs is not None
                or size_average is not None or reduce is not None or label_smoothing
                or target.is_floating_point() or input.dim() < 2):
            return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce,
                                   reduction, label_smoothing)
        device = input.device.type
        autocast = torch.is_autocast_enabled(device)
        with torch.autocast(device, enabled=False):
            if autocast:  # cross_entropy is a float32 operator under autocast
                input = upcast(input)
                weight = None if weight is None else upcast(weight)
            log_probs = F.log_softmax(input, 1)
            self.log_probs = log_probs
            return F.nll_loss(log_probs, target, weight, ignore_index=ignore_index,
                              reduction=reduction)


@contextlib.contextmanager
def _shared_log_softmax(logits: Tensor, enabled: bool = True):
    """While the decoder's ``loss_by_feat`` runs, mmseg's softmax
    cross-entropy of ``logits`` keeps its log-probabilities (yields a
    :class:`_CrossEntropyKeepingLogProbs`; its ``log_probs`` stays None when
    no such cross-entropy ran), so that our attention loss reuses them:
    one log-softmax and one log-softmax backward less at full resolution,
    the two losses' gradients summed before it. Yields None when not
    ``enabled``."""
    if not enabled:
        yield None
        return
    from mmseg.models.losses import cross_entropy_loss
    original = cross_entropy_loss.F
    keeping = _CrossEntropyKeepingLogProbs(logits, original)
    cross_entropy_loss.F = keeping
    try:
        yield keeping
    finally:
        cross_entropy_loss.F = original


def _build_optional(cfg, key):
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'GatedShapeHead.{key} must be a loss config dict with a '
                         f"'type' (or None to disable it), got {cfg!r}")
    check_keys(cfg, cfg['type'], f'shape_head.{key}', MODELS)
    return MODELS.build(cfg)


@MODELS.register_module()
class GatedShapeHead(BaseModule):
    """Wraps a registered mmseg decode head and adds the shape stream.

    The wrapped head (``decoder``) runs unchanged on the backbone features;
    a :class:`ShapeStream` computes boundary logits from the same features and
    the image, and its fused boundary map enters the decoder through a
    fusion module (:mod:`mmgscnn.models.shape_stream.boundary_fusion`).

    ``forward``/``predict`` return segmentation logits exactly like the
    wrapped head; ``forward_with_boundary``/``predict_with_boundary`` also
    return the boundary logits (used by :class:`GSCNNEncoderDecoder`).
    ``loss`` returns the decoder's own losses (its ``loss_decode``, e.g.
    ``loss_ce``, and ``acc_seg``) plus ``loss_boundary``, ``loss_attention``
    and ``loss_dual_task``.

    The image reaches the head through :class:`GSCNNEncoderDecoder`, which
    attaches it to the feature list.

    Args:
        decoder: config of any registered decode head (``SepASPPHead``...
            i.e. ``DepthwiseSeparableASPPHead``, ``PSPHead``, ``FCNHead``,
            ``UPerHead``, ...). Its ``num_classes``, ``ignore_index``,
            ``align_corners`` and ``loss_decode`` are the segmentation's.
        shape_stream: :class:`ShapeStream` kwargs; ``in_channels`` is
            required. ``norm_cfg`` and ``align_corners`` default to the
            decoder's.
        fusion: config of a registered fusion module (``type`` and its
            kwargs, e.g. ``dict(type='ClassifierBoundaryFusion',
            channels=64)``). Without ``type``: ``ASPPBoundaryFusion`` for
            ASPP-family decoders (the paper), ``ClassifierBoundaryFusion``
            for every other head.
        loss_boundary: class-balanced boundary BCE (paper weight 20), or None.
        loss_attention: attention loss (threshold 0.8, weight 1), or None.
        loss_dual_task: dual-task loss (weight 1), or None.
        boundary_target: how boundary targets are made: ``source='labels'``
            (from ``gt_sem_seg`` on the device, ``radius`` pixels) or
            ``source='gt_edge_map'`` (from mmseg's ``GenerateEdge`` in the
            pipeline). Pixels within ``radius`` of an ignored pixel are left
            out of the boundary loss either way. ``radius=1`` (default) marks
            a band 2 px wide, one pixel on each side of a class border: the
            thinnest band that marks both sides, in line with the 1-3 px
            tolerances the boundary F-score is read at. The official code
            marks pixels within 2 px of a border (a 4 px band);
            ``radius=2`` gives that band.
        compile: ``torch.compile`` of the shape stream and of our losses
            (boundary targets, boundary BCE, attention and dual-task losses),
            not of the backbone or the decoder; None (default): eager. See
            :func:`~mmgscnn.models.utils.regional_compile.compile_settings`:
            ``dict(stream=True, losses=True, mode='default', dynamic=None)``;
            ``mode='reduce-overhead'`` captures CUDA graphs (CUDA only).
    """

    def __init__(self, decoder: dict, shape_stream: dict, fusion: dict = dict(channels=64),
                 loss_boundary=dict(type='BoundaryBCELoss', loss_weight=20.0),
                 loss_attention=dict(type='BoundaryAttentionLoss', threshold=0.8,
                                     loss_weight=1.0),
                 loss_dual_task=dict(type='DualTaskLoss', loss_weight=1.0),
                 boundary_target=dict(source='labels', radius=1),
                 compile=None, init_cfg=None):
        super().__init__(init_cfg)
        self.decoder = self._build_decoder(decoder)
        stream_cfg = dict(shape_stream or {})
        check_keys(stream_cfg, stream_cfg.get('type', 'ShapeStream'),
                   'shape_head.shape_stream', MODELS)
        check_keys(stream_cfg.get('image_gradient'), ImageGradient,
                   'shape_head.shape_stream.image_gradient')
        if 'in_channels' not in stream_cfg:
            raise ValueError(
                'GatedShapeHead.shape_stream.in_channels is required: the channels '
                'of every feature level the backbone gives, e.g. [256, 512, 1024, '
                '2048] for a ResNet-50/101')
        stream_cfg.setdefault('type', 'ShapeStream')
        stream_cfg.setdefault('norm_cfg', self.decoder.norm_cfg)
        stream_cfg.setdefault('align_corners', self.decoder.align_corners)
        self.shape_stream = MODELS.build(stream_cfg)
        self.fusion = self._build_fusion(fusion)

        self.loss_boundary = _build_optional(loss_boundary, 'loss_boundary')
        self.loss_attention = _build_optional(loss_attention, 'loss_attention')
        self.loss_dual_task = _build_optional(loss_dual_task, 'loss_dual_task')
        target = dict(source='labels', radius=1)
        check_dict_keys(boundary_target or {}, target, 'shape_head.boundary_target')
        target.update(boundary_target or {})
        if target['source'] not in ('labels', 'gt_edge_map'):
            raise ValueError("GatedShapeHead.boundary_target.source must be 'labels' or "
                             f"'gt_edge_map', got {target['source']!r}")
        self.boundary_target = target
        self.compile_settings = compile_settings(compile)
        if region_settings(self.compile_settings, 'stream') is not None:
            compile_module(self.shape_stream, self.compile_settings)

    @staticmethod
    def _build_decoder(cfg):
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise ValueError('GatedShapeHead.decoder must be the config dict of an mmseg '
                             f"decode head, with a 'type', got {cfg!r}")
        if isinstance(cfg['type'], str) and MODELS.get(cfg['type']) is None:
            raise KeyError(
                f"GatedShapeHead.decoder.type={cfg['type']!r} is not a registered "
                f"decode head; use one of mmseg's heads, e.g. "
                f"'DepthwiseSeparableASPPHead', 'PSPHead', 'FCNHead', 'UPerHead'")
        if cfg['type'] == 'GatedShapeHead':
            raise ValueError('GatedShapeHead.decoder cannot be another GatedShapeHead')
        return MODELS.build(copy.deepcopy(cfg))

    def _build_fusion(self, cfg):
        if not isinstance(cfg, dict):
            raise ValueError(
                "GatedShapeHead.fusion must be a config dict, e.g. dict(channels=64) "
                "(the decoder's default fusion) or dict(type='ClassifierBoundaryFusion', "
                f"channels=64), got {cfg!r}")
        cfg = dict(cfg)
        cfg.setdefault('type', default_fusion_type(self.decoder))
        if isinstance(cfg['type'], str) and MODELS.get(cfg['type']) is None:
            raise KeyError(f"GatedShapeHead.fusion.type={cfg['type']!r} is not registered; "
                           "use 'ASPPBoundaryFusion' or 'ClassifierBoundaryFusion' (or "
                           'register your own fusion module)')
        check_keys(cfg, cfg['type'], 'shape_head.fusion', MODELS, also=('decoder', ))
        return MODELS.build(cfg, default_args=dict(decoder=self.decoder))

    # The attributes mmseg's segmentors read from their decode head.
    @property
    def num_classes(self) -> int:
        return self.decoder.num_classes

    @property
    def out_channels(self) -> int:
        return self.decoder.out_channels

    @property
    def align_corners(self) -> bool:
        return self.decoder.align_corners

    @property
    def ignore_index(self) -> int:
        return self.decoder.ignore_index

    @property
    def threshold(self):
        return self.decoder.threshold

    def check_inputs(self, inputs: List[Tensor]) -> None:
        """Validate the feature levels against the config (build-time probe)."""
        self.shape_stream.check_inputs(inputs)

    def forward_with_boundary(self, inputs: List[Tensor]) -> tuple:
        """Features (:class:`FeaturesWithImage`) -> (seg logits (N, K, h, w) like the
        decoder's, boundary logits (N, 1, H/stride, W/stride))."""
        image = getattr(inputs, 'inputs', None)
        if image is None:
            raise RuntimeError(
                "GatedShapeHead needs the input image: use model type "
                "'GSCNNEncoderDecoder' (model=dict(type='GSCNNEncoderDecoder', ...)) "
                "instead of 'EncoderDecoder'")
        check_device(self.compile_settings, image)
        if uses_cuda_graphs(self.compile_settings):
            torch.compiler.cudagraph_mark_step_begin()
        with record_function('mmgscnn.shape_stream'):
            boundary_logits, fused = self.shape_stream(
                inputs, image, getattr(inputs, 'image_valid', None),
                getattr(inputs, 'pixel_affine', None))
        with self.fusion.attached(fused), record_function('mmgscnn.decoder'):
            seg_logits = self.decoder(inputs)
        return seg_logits, boundary_logits

    def forward(self, inputs: List[Tensor]) -> Tensor:
        return self.forward_with_boundary(inputs)[0]

    def predict_with_boundary(self, inputs, batch_img_metas: List[dict], test_cfg) -> tuple:
        """Segmentation and boundary logits, both resized to the (padded)
        input size like mmseg's ``predict_by_feat``: (N, K, H, W), (N, 1, H, W)."""
        seg_logits, boundary_logits = self.forward_with_boundary(inputs)
        seg_logits = self.decoder.predict_by_feat(seg_logits, batch_img_metas)
        # no identity interpolation at stride 1 (the stream's output is the input size)
        boundary_logits = upsample_bilinear(boundary_logits, seg_logits.shape[-2:],
                                            self.align_corners)
        return seg_logits, boundary_logits.to(seg_logits.dtype)

    def predict(self, inputs, batch_img_metas: List[dict], test_cfg) -> Tensor:
        return self.predict_with_boundary(inputs, batch_img_metas, test_cfg)[0]

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        seg_logits, boundary_logits = self.forward_with_boundary(inputs)
        return self.loss_by_feat(seg_logits, boundary_logits, batch_data_samples)

    def edge_map(self, batch_data_samples):
        """(N, 1, H, W) ``gt_edge_map`` of the samples when the boundary
        targets come from it, else None."""
        if self.boundary_target['source'] == 'labels':
            return None
        if not all('gt_edge_map' in ds for ds in batch_data_samples):
            raise KeyError(
                "GatedShapeHead.boundary_target.source='gt_edge_map' but the data "
                "samples have no gt_edge_map: add dict(type='GenerateEdge') to the "
                "train pipeline before PackSegInputs, or use source='labels'")
        return torch.stack([ds.gt_edge_map.data for ds in batch_data_samples])

    def boundary_targets(self, seg_label: Tensor, batch_data_samples) -> tuple:
        """(N, H, W) labels -> boundary target and valid mask, (N, 1, H, W)."""
        return boundary_target(seg_label, self.ignore_index, self.boundary_target['radius'],
                               edge_map=self.edge_map(batch_data_samples))

    def loss_by_feat(self, seg_logits: Tensor, boundary_logits: Tensor,
                     batch_data_samples) -> dict:
        """The decoder's losses and ours. The segmentation logits are enlarged
        to the label size once and shared by all of them."""
        stacked = self.decoder._stack_batch_gt(batch_data_samples)
        seg_label = stacked.squeeze(1)
        size = seg_label.shape[-2:]
        seg_logits = upsample_bilinear(seg_logits, size, self.align_corners)
        share = isinstance(self.loss_attention, BoundaryAttentionLoss)
        with _no_identity_resize(), _stacked_labels(self.decoder, batch_data_samples,
                                                    stacked), \
                _shared_log_softmax(seg_logits, share) as keeping:
            losses = self.decoder.loss_by_feat(seg_logits, batch_data_samples)
        log_probs = None if keeping is None else keeping.log_probs
        edge_map = None if self.loss_boundary is None else self.edge_map(batch_data_samples)
        shape_losses = compiled_function(GatedShapeHead.shape_losses,
                                         region_settings(self.compile_settings, 'losses'))
        losses.update(shape_losses(self, seg_logits, boundary_logits, seg_label, edge_map,
                                   log_probs))
        return losses

    def shape_losses(self, seg_logits: Tensor, boundary_logits: Tensor, seg_label: Tensor,
                     edge_map=None, log_probs=None) -> dict:
        """Our losses (boundary BCE with its targets, attention, dual-task):
        seg logits (N, K, H, W) at the label size, boundary logits (N, 1, h, w),
        labels (N, H, W), ``gt_edge_map`` (N, 1, H, W) or None, ``log_probs``:
        the decoder's cross-entropy's log-softmax of ``seg_logits`` (with
        grad) or None -> dict. The region ``compile=dict(losses=True)``
        compiles."""
        losses = dict()
        boundary_logits = upsample_bilinear(boundary_logits, seg_label.shape[-2:],
                                            self.align_corners)
        if self.loss_boundary is not None:
            with record_function('mmgscnn.loss_boundary'):
                # our BCE is told the target is masked by valid (0/1, and 0
                # where not valid), which saves it a threshold and a pass
                ours = isinstance(self.loss_boundary, BoundaryBCELoss)
                target, valid = boundary_target(
                    seg_label, self.ignore_index, self.boundary_target['radius'],
                    edge_map=edge_map, dtype=torch.float32)
                losses[self.loss_boundary.loss_name] = self.loss_boundary(
                    boundary_logits, target, valid, **(dict(target_masked=True) if ours
                                                       else {}))
        # one float32 copy of half-precision logits, shared by our losses;
        # they send their gradients to the half logits directly
        with torch.no_grad():
            logits32 = upcast(seg_logits)

        def shared(loss):
            return dict(upcast_logits=logits32) if (
                isinstance(loss, (BoundaryAttentionLoss, DualTaskLoss))
                and logits32 is not seg_logits) else {}

        if self.loss_attention is not None:
            with record_function('mmgscnn.loss_attention'):
                kwargs = shared(self.loss_attention)
                if (log_probs is not None and log_probs.dtype == logits32.dtype
                        and isinstance(self.loss_attention, BoundaryAttentionLoss)
                        and seg_logits.shape[1] > 1):
                    kwargs = dict(log_probs=log_probs)
                losses[self.loss_attention.loss_name] = self.loss_attention(
                    seg_logits, seg_label, ignore_index=self.ignore_index,
                    boundary_logits=boundary_logits, **kwargs)
        if self.loss_dual_task is not None:
            with record_function('mmgscnn.loss_dual_task'):
                losses[self.loss_dual_task.loss_name] = self.loss_dual_task(
                    seg_logits, seg_label, ignore_index=self.ignore_index,
                    **shared(self.loss_dual_task))
        return losses

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        """Accept a plain model's checkpoint (``load_from`` a baseline).

        A plain decode head keeps its parameters right under ``prefix``; here
        they live under ``prefix + 'decoder.'``. Such keys are moved there. An
        ASPP bottleneck that has fewer input channels than ours (no boundary
        branch) is loaded into the leading input channels and the boundary
        branch's channels are zeroed, so the loaded model starts from the
        baseline's ASPP output. Missing keys (the shape stream, the fusion)
        are then reported by the loader as usual.
        """
        moved = [k for k in state_dict
                 if k.startswith(prefix) and not k[len(prefix):].startswith(_OWN_PREFIXES)]
        for key in moved:
            state_dict[prefix + 'decoder.' + key[len(prefix):]] = state_dict.pop(key)
        own = self.state_dict(prefix=prefix)
        if moved:
            new = sorted({k[len(prefix):].split('.')[0] + '.' + k[len(prefix):].split('.')[1]
                          for k in own if k not in state_dict})
            print_log(f'GatedShapeHead: loading a plain decode head checkpoint '
                      f'({len(moved)} tensors moved under {prefix}decoder.); new '
                      f'modules, initialised instead of loaded: {", ".join(new)}',
                      logger='current')
        for key, value in list(state_dict.items()):
            mine = own.get(key)
            if (mine is not None and value.dim() == 4 and mine.dim() == 4
                    and value.shape[1] < mine.shape[1]
                    and value.shape[0] == mine.shape[0]
                    and value.shape[2:] == mine.shape[2:]
                    and key.startswith(prefix + 'decoder.bottleneck.')):
                widened = torch.zeros_like(mine)
                widened[:, :value.shape[1]] = value
                state_dict[key] = widened
                print_log(f'GatedShapeHead: {key} widened from {value.shape[1]} to '
                          f'{mine.shape[1]} input channels (boundary branch zeroed)',
                          logger='current')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
