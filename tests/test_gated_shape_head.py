"""mmgscnn.models.decode_heads.gated_shape_head: GatedShapeHead on several
mmseg decode heads and backbones, its losses (training, weights, switches,
targets, log keys), build errors and loading a baseline checkpoint."""
import re

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.utils.config_errors import UnknownKeyError

from helpers import (TINY_CLASSES, draw_scene, make_batch, tiny_model, tiny_runner_config,
                     write_camvid_layout)

NUM_CLASSES = len(TINY_CLASSES)
LOSS_KEYS = ('decode.loss_ce', 'decode.loss_boundary', 'decode.loss_attention',
             'decode.loss_dual_task')
HEADS = ['sepaspp', 'psp', 'fcn', 'uper']


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('size', [(64, 128), (67, 93)])
def test_gscnn_modes_gradients_and_sizes(head, size):
    model = build(tiny_model(head))
    model.train()
    data = make_batch(model, *size)
    inputs, samples = data['inputs'], data['data_samples']

    seg = model(inputs, samples, mode='tensor')
    assert seg.shape[:2] == (2, NUM_CLASSES)

    losses = model(inputs, samples, mode='loss')
    for key in ('decode.loss_ce', 'decode.loss_boundary', 'decode.loss_attention',
                'decode.loss_dual_task'):
        assert key in losses and torch.isfinite(losses[key]), key
    model.zero_grad()
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    head_module = model.decode_head
    for name, p in list(head_module.shape_stream.named_parameters()) + \
            list(head_module.fusion.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, f'no gradient: {name}'

    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    for p in preds:
        assert p.pred_sem_seg.shape == size
        assert p.seg_logits.data.shape == (NUM_CLASSES, ) + size
        assert p.pred_boundary.shape == size
        b = p.pred_boundary.data
        assert b.min() >= 0 and b.max() <= 1


def test_stride2_shape_stream_trains_smoke():
    """Runs (values: test_method_formulas' stride-2 stream inputs)."""
    model = build(tiny_model('sepaspp', shape_stream=dict(stride=2,
                                                           image_gradient=dict(method='canny'))))
    data = make_batch(model, 48, 64)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    _, boundary_logits = model.decode_head.forward_with_boundary(
        model.extract_feat(data['inputs']))
    assert boundary_logits.shape[-2:] == (24, 32)


def test_mobilenet_v2_backbone():
    backbone = dict(type='MobileNetV2', widen_factor=1., strides=(1, 2, 2, 2, 1, 1, 1),
                    dilations=(1, 1, 1, 1, 2, 2, 4), out_indices=(1, 2, 4, 6),
                    norm_cfg=dict(type='BN', requires_grad=True))
    cfg = tiny_model('sepaspp', backbone=backbone,
                     shape_stream=dict(in_channels=[24, 32, 96, 320]),
                     in_channels=320, c1_in_channels=24)
    run_train_and_predict(cfg)


def test_mix_vision_transformer_backbone():
    backbone = dict(type='MixVisionTransformer', in_channels=3, embed_dims=16,
                    num_stages=4, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                    patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
                    out_indices=(0, 1, 2, 3), mlp_ratio=2, qkv_bias=True)
    cfg = tiny_model('fcn', backbone=backbone,
                     shape_stream=dict(in_channels=[16, 32, 64, 128]))
    cfg.decode_head = ConfigDict(
        type='SegformerHead', in_channels=[16, 32, 64, 128], in_index=[0, 1, 2, 3],
        channels=16, dropout_ratio=0.1, num_classes=NUM_CLASSES,
        norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    run_train_and_predict(cfg)


def run_train_and_predict(cfg):
    model = build(cfg)
    data = make_batch(model, 64, 64)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, p in model.decode_head.shape_stream.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_sem_seg.shape == (64, 64)


def test_unknown_wrapped_head_fails_at_build():
    cfg = tiny_model('fcn')
    cfg.decode_head.type = 'NoSuchHead'
    with pytest.raises(KeyError, match="decoder.type='NoSuchHead'"):
        build(cfg)


def test_plain_encoder_decoder_with_gated_head_says_what_to_use():
    cfg = tiny_model('fcn')
    cfg.type = 'EncoderDecoder'
    cfg.decode_head = dict(type='GatedShapeHead', decoder=cfg.decode_head,
                           **cfg.pop('shape_head'))
    model = build(cfg)
    data = make_batch(model, 32, 32)
    with pytest.raises(RuntimeError, match=re.escape(
            "GatedShapeHead needs the input image: use model type 'GSCNNEncoderDecoder' "
            "(model=dict(type='GSCNNEncoderDecoder', ...)) instead of 'EncoderDecoder'")):
        model(data['inputs'], data['data_samples'], mode='loss')


def test_tiny_gscnn_overfits_with_all_four_losses():
    torch.manual_seed(0)
    model = MODELS.build(tiny_model('sepaspp'))
    model.init_weights()
    model.train()
    rng = np.random.default_rng(0)
    imgs, samples = [], []
    for _ in range(4):
        img, label = draw_scene(rng, 48, 64)
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(48, 64), ori_shape=(48, 64)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(label).long()[None])
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(80):
        losses = model(**data, mode='loss')
        assert all(k in losses for k in LOSS_KEYS)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: losses[k].item() for k in LOSS_KEYS})
    start = sum(history[0].values())
    end = sum(history[-1].values())
    assert end < 0.35 * start, (history[0], history[-1])
    for key in ('decode.loss_ce', 'decode.loss_boundary'):
        assert history[-1][key] < 0.6 * history[0][key], key
    # The boundary classifier starts near 0 (probability 0.5 < 0.8): no pixel
    # passes the attention threshold at first; once boundaries are learnt, some do.
    assert history[0]['decode.loss_attention'] == 0
    assert history[-1]['decode.loss_attention'] > 0


def _batch(model, h=32, w=48):
    rng = np.random.default_rng(1)
    imgs, samples = [], []
    for _ in range(2):
        img, label = draw_scene(rng, h, w)
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(label).long()[None])
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


def test_loss_weights_and_switches_from_config():
    weights = dict(loss_boundary=dict(type='BoundaryBCELoss', loss_weight=5.0),
                   loss_attention=None,
                   loss_dual_task=dict(type='DualTaskLoss', loss_weight=3.0,
                                       loss_name='loss_dt'))
    model = MODELS.build(tiny_model('fcn', head_kwargs=weights))
    data = _batch(model)
    losses = model(**data, mode='loss')
    assert 'decode.loss_attention' not in losses and 'decode.loss_dt' in losses
    reference = MODELS.build(tiny_model('fcn'))
    reference.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    ref = reference(**data, mode='loss')
    torch.manual_seed(0)
    losses = model(**data, mode='loss')
    torch.testing.assert_close(losses['decode.loss_boundary'],
                               ref['decode.loss_boundary'] * 5.0 / 20.0)
    torch.testing.assert_close(losses['decode.loss_dt'], ref['decode.loss_dual_task'] * 3.0)


def test_boundary_targets_from_gt_edge_map():
    model = MODELS.build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(source='gt_edge_map'))))
    data = _batch(model)
    with pytest.raises(KeyError, match=re.escape(
            "GatedShapeHead.boundary_target.source='gt_edge_map' but the data samples have "
            "no gt_edge_map: add dict(type='GenerateEdge') to the train pipeline before "
            "PackSegInputs, or use source='labels'")):
        model(**data, mode='loss')
    for s in data['data_samples']:
        edge = torch.zeros_like(s.gt_sem_seg.data)
        edge[..., 10:12] = 1
        s.gt_edge_map = PixelData(data=edge)
    head = model.decode_head
    label = head.decoder._stack_batch_gt(data['data_samples']).squeeze(1)
    target, valid = head.boundary_targets(label, data['data_samples'])
    assert target[..., 10:12].all() and target.sum() == target[..., 10:12].numel()
    assert torch.isfinite(model(**data, mode='loss')['decode.loss_boundary'])


def test_each_loss_is_logged_under_its_name(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    cfg = tiny_runner_config(tmp_path / 'work', data_root, max_iters=2, interval=2,
                             val=False)
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in LOSS_KEYS:
        assert f'train/{key}' in scalars, sorted(scalars)
    log_files = list((tmp_path / 'work').glob('*/*.log'))
    text = log_files[0].read_text()
    for key in LOSS_KEYS:
        assert key + ':' in text


@pytest.mark.parametrize('decoder', ['sepaspp', 'psp'])
def test_load_from_baseline_checkpoint(tmp_path, decoder, capsys):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    base = Runner.from_cfg(tiny_runner_config(
        tmp_path / 'base', data_root, model=tiny_model(decoder, gscnn=False),
        max_iters=2, interval=2, val=False))
    base.train()
    ckpt = str(tmp_path / 'base' / 'iter_2.pth')
    baseline = _load_checkpoint(ckpt)['state_dict']

    cfg = tiny_runner_config(tmp_path / 'gscnn', data_root, model=tiny_model(decoder),
                             max_iters=2, interval=2, val=False)
    cfg.load_from = ckpt
    cfg.log_level = 'INFO'
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    state = runner.model.state_dict()
    for key, value in baseline.items():
        if key.startswith('decode_head.'):
            mine = state['decode_head.decoder.' + key[len('decode_head.'):]]
        else:
            mine = state[key]
        if key == 'decode_head.bottleneck.conv.weight':  # ASPP: one more branch
            assert torch.equal(mine[:, :value.shape[1]], value)
            assert mine[:, value.shape[1]:].abs().sum() == 0
        else:
            assert torch.equal(mine, value), key
    log = next((tmp_path / 'gscnn').glob('*/*.log')).read_text()
    assert 'GatedShapeHead: loading a plain decode head checkpoint' in log
    assert 'shape_stream.input_conv' in log and 'fusion.branch' in log
    printed = capsys.readouterr().out  # mmengine prints its own key report
    assert 'missing keys in source state_dict' in printed
    assert 'decode_head.shape_stream.' in printed and 'decode_head.fusion.' in printed
    assert 'unexpected key' not in printed
    runner.train()  # and it trains from there


def test_labels_are_stacked_once_and_the_decoder_loss_is_unchanged(monkeypatch):
    """GatedShapeHead.loss_by_feat stacks the labels once and hands them to
    the decoder's own loss (which would stack them again): its loss_ce
    equals the decoder's on the same enlarged logits, and afterwards the
    decoder stacks by its class's method again."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    model = MODELS.build(tiny_model('fcn'))
    data = _batch(model)
    calls = []
    original = BaseDecodeHead._stack_batch_gt

    def counting(self, samples):
        calls.append(len(samples))
        return original(self, samples)

    monkeypatch.setattr(BaseDecodeHead, '_stack_batch_gt', counting)
    head = model.decode_head
    feats = model.extract_feat(data['inputs'])
    seg_logits, boundary_logits = head.forward_with_boundary(feats)
    torch.manual_seed(0)
    losses = head.loss_by_feat(seg_logits, boundary_logits, data['data_samples'])
    assert calls == [2]
    assert '_stack_batch_gt' not in vars(head.decoder)
    label = original(head.decoder, data['data_samples'])
    enlarged = torch.nn.functional.interpolate(seg_logits, size=label.shape[-2:],
                                               mode='bilinear', align_corners=False)
    expected = head.decoder.loss_decode(enlarged, label.squeeze(1),
                                        ignore_index=head.ignore_index)
    torch.testing.assert_close(losses['loss_ce'], expected)
    head.decoder._stack_batch_gt(data['data_samples'])
    assert calls == [2, 2]


def test_predict_enlarges_a_stride2_boundary_map_like_the_segmentation_align_corners():
    """Stride-2 stream, decoder with ``align_corners=True``: both outputs of
    ``predict_with_boundary`` are the raw logits enlarged to the input size
    by ``F.interpolate`` with the decoder's ``align_corners``; ``predict``
    gives the segmentation alone."""
    torch.manual_seed(0)
    model = build(tiny_model('fcn', align_corners=True, shape_stream=dict(stride=2))).eval()
    data = make_batch(model, 40, 56, training=False)
    head = model.decode_head
    feats = model.extract_feat(data['inputs'])
    metas = [ds.metainfo for ds in data['data_samples']]
    with torch.no_grad():
        seg_raw, boundary_raw = head.forward_with_boundary(feats)
        seg, boundary = head.predict_with_boundary(feats, metas, model.test_cfg)
        seg_only = head.predict(feats, metas, model.test_cfg)
    assert boundary_raw.shape == (2, 1, 20, 28)
    interpolate = torch.nn.functional.interpolate
    torch.testing.assert_close(boundary, interpolate(boundary_raw, size=(40, 56),
                                                     mode='bilinear', align_corners=True))
    torch.testing.assert_close(seg, interpolate(seg_raw, size=(40, 56), mode='bilinear',
                                                align_corners=True))
    torch.testing.assert_close(seg_only, seg)
    assert boundary.dtype == seg.dtype == torch.float32


class _Levels(list):
    """A feature list with only the ``inputs`` attribute (no padding mask,
    no affine): what a custom segmentor may hand the head."""


def test_forward_takes_the_padding_mask_and_the_pixel_affine_from_the_features():
    from mmgscnn.models.segmentors import FeaturesWithImage
    torch.manual_seed(0)
    model = build(tiny_model('fcn')).eval()
    inputs = make_batch(model, 32, 48, training=False)['inputs']
    head, dp = model.decode_head, model.data_preprocessor
    feats = list(model.backbone(inputs))
    pixels = _Levels(feats)
    pixels.inputs = inputs * dp.std + dp.mean           # the pixels themselves
    valid = torch.ones(2, 1, 32, 48, dtype=torch.bool)
    valid[0, :, :, 40:] = False
    with torch.no_grad():
        from_pixels = head.forward_with_boundary(pixels)[1]
        affine = head.forward_with_boundary(
            FeaturesWithImage(feats, inputs, None, (dp.std, dp.mean)))[1]
        masked = head.forward_with_boundary(
            FeaturesWithImage(feats, inputs, valid, (dp.std, dp.mean)))[1]
        as_pixels = head.forward_with_boundary(FeaturesWithImage(feats, inputs))[1]
    # the affine undoes the normalisation: the same map as from the pixels
    torch.testing.assert_close(affine, from_pixels, rtol=1e-4, atol=1e-6)
    # without it the normalised values would be read as pixels
    assert (as_pixels - from_pixels).abs().max() > 1e-4
    # the padding mask reaches the stream (the first image only is padded)
    assert (masked[0] - from_pixels[0]).abs().max() > 1e-4
    torch.testing.assert_close(masked[1], from_pixels[1], rtol=1e-4, atol=1e-6)


def test_profiler_sees_the_heads_named_ranges():
    model = build(tiny_model('fcn')).train()
    data = make_batch(model, 32, 48)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(**data, mode='loss')
    names = {e.name for e in prof.events()}
    assert {'mmgscnn.shape_stream', 'mmgscnn.decoder', 'mmgscnn.loss_boundary',
            'mmgscnn.loss_attention', 'mmgscnn.loss_dual_task'} <= names


def test_cuda_graph_compile_mode_is_refused_at_a_cpu_forward():
    from mmgscnn.utils.config_errors import ConfigError
    model = build(tiny_model('fcn', head_kwargs=dict(compile=dict(mode='reduce-overhead'))))
    data = make_batch(model, 32, 32)
    with pytest.raises(ConfigError, match=r"^shape_head\.compile\.mode='reduce-overhead' "
                       r"captures CUDA graphs, which need CUDA tensors, but the model runs "
                       r"on cpu"):
        model(**data, mode='loss')


def test_boundary_targets_use_the_configured_radius():
    model = MODELS.build(tiny_model('fcn', head_kwargs=dict(boundary_target=dict(radius=2))))
    label = torch.zeros(1, 6, 8, dtype=torch.long)
    label[..., 4:] = 1
    target, valid = model.decode_head.boundary_targets(label, [SegDataSample()])
    expected = torch.zeros(1, 1, 6, 8)
    expected[..., 2:6] = 1          # two pixels on each side of the border
    assert torch.equal(target.float(), expected) and valid.all()


def test_load_state_dict_widens_only_a_narrower_bottleneck(monkeypatch):
    """A narrower ASPP bottleneck (a baseline's) is widened with zeros and
    logged; same shapes load as they are, silently; a wider one, a missing
    or an unexpected key are torch's usual errors, not a crash in ours."""
    from mmgscnn.models.decode_heads import gated_shape_head as module
    logs = []
    monkeypatch.setattr(module, 'print_log', lambda msg, **kw: logs.append((msg, kw)))
    torch.manual_seed(0)
    head = build(tiny_model('sepaspp')).decode_head
    own = {k: v.clone() for k, v in head.state_dict().items()}
    key = 'decoder.bottleneck.conv.weight'
    out, cin, kh, kw = own[key].shape
    head.load_state_dict(own)
    assert logs == []

    narrow = dict(own)
    narrow[key] = torch.randn(out, cin - 8, kh, kw)
    head.load_state_dict(narrow)
    loaded = head.state_dict()[key]
    assert torch.equal(loaded[:, :cin - 8], narrow[key]) and loaded[:, cin - 8:].eq(0).all()
    assert logs == [(f'GatedShapeHead: {key} widened from {cin - 8} to {cin} input channels '
                     '(boundary branch zeroed)', dict(logger='current'))]

    wide = dict(own)
    wide[key] = torch.zeros(out, cin + 3, kh, kw)
    with pytest.raises(RuntimeError, match=f'size mismatch for {key}'):
        head.load_state_dict(wide, strict=False)

    part = dict(own)
    missing = 'shape_stream.fuse.weight'
    assert missing in part
    del part[missing]
    part['decoder.bogus'] = torch.zeros(1, 1, 1, 1)
    result = head.load_state_dict(part, strict=False)
    assert result.missing_keys == [missing] and result.unexpected_keys == ['decoder.bogus']


def test_load_state_dict_of_a_plain_head_names_the_new_modules(monkeypatch):
    from mmgscnn.models.decode_heads import gated_shape_head as module
    logs = []
    monkeypatch.setattr(module, 'print_log', lambda msg, **kw: logs.append(msg))
    torch.manual_seed(0)
    head = build(tiny_model('fcn')).decode_head
    plain = build(tiny_model('fcn', gscnn=False)).decode_head.state_dict()
    result = head.load_state_dict(plain, strict=False)
    # every key of ours outside the decoder is new: module names at depth 2
    ours = sorted({'.'.join(k.split('.')[:2]) for k in head.state_dict()
                   if not k.startswith('decoder.')})
    assert len(ours) > 3 and result.unexpected_keys == []
    # (batch norms accept a checkpoint without their batch count)
    assert sorted(result.missing_keys) == sorted(
        k for k in head.state_dict()
        if not k.startswith('decoder.') and not k.endswith('num_batches_tracked'))
    assert logs == [f'GatedShapeHead: loading a plain decode head checkpoint ({len(plain)} '
                    f'tensors moved under decoder.); new modules, initialised instead of '
                    f'loaded: {", ".join(ours)}']


def test_losses_enlarge_logits_with_the_decoders_align_corners():
    """Decoder with ``align_corners=True``, stride-2 stream: the decoder's
    cross-entropy and our losses read the logits enlarged to the label size
    by ``F.interpolate`` with ``align_corners=True``."""
    from mmgscnn.models.shape_stream import boundary_target
    interpolate = torch.nn.functional.interpolate
    torch.manual_seed(0)
    model = build(tiny_model('fcn', align_corners=True, shape_stream=dict(stride=2)))
    data = _batch(model, 32, 48)
    head = model.decode_head
    seg_logits, boundary_logits = head.forward_with_boundary(
        model.extract_feat(data['inputs']))
    assert boundary_logits.shape[-2:] == (16, 24) and seg_logits.shape[-2:] != (32, 48)
    torch.manual_seed(1)
    losses = head.loss_by_feat(seg_logits, boundary_logits, data['data_samples'])
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    seg = interpolate(seg_logits, size=(32, 48), mode='bilinear', align_corners=True)
    boundary = interpolate(boundary_logits, size=(32, 48), mode='bilinear',
                           align_corners=True)
    target, valid = boundary_target(label, 255, 1)
    expected = dict(
        loss_ce=head.decoder.loss_decode(seg, label, ignore_index=255),
        loss_boundary=head.loss_boundary(boundary, target, valid),
        loss_attention=head.loss_attention(seg, label, ignore_index=255,
                                           boundary_logits=boundary))
    torch.manual_seed(1)
    expected['loss_dual_task'] = head.loss_dual_task(seg, label, ignore_index=255)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, rtol=1e-5, atol=1e-6, msg=key)


def _edge_samples(model):
    data = _batch(model)
    for s in data['data_samples']:
        edge = torch.zeros_like(s.gt_sem_seg.data)
        edge[..., 10:12] = 1
        s.gt_edge_map = PixelData(data=edge)
    return data


def test_boundary_loss_reads_the_edge_maps_and_needs_them_only_when_on():
    from mmgscnn.models.shape_stream import boundary_target
    torch.manual_seed(0)
    model = build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(source='gt_edge_map'))))
    data = _edge_samples(model)
    head = model.decode_head
    seg_logits, boundary_logits = head.forward_with_boundary(
        model.extract_feat(data['inputs']))
    losses = head.loss_by_feat(seg_logits, boundary_logits, data['data_samples'])
    label = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    edges = torch.stack([s.gt_edge_map.data for s in data['data_samples']])
    target, valid = boundary_target(label, 255, 1, edge_map=edges)
    from_labels, _ = boundary_target(label, 255, 1)
    assert not torch.equal(target, from_labels)
    torch.testing.assert_close(losses['loss_boundary'],
                               head.loss_boundary(boundary_logits, target, valid))
    # without the boundary loss no edge map is needed
    model = build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(source='gt_edge_map'), loss_boundary=None)))
    losses = model(**_batch(model), mode='loss')
    assert 'decode.loss_boundary' not in losses and 'decode.loss_attention' in losses


@pytest.mark.parametrize('compile,expected', [
    (None, None), (dict(stream=False, losses=False), None),
    (dict(stream=False, mode='max-autotune-no-cudagraphs'),
     dict(stream=False, losses=True, mode='max-autotune-no-cudagraphs', dynamic=None))])
def test_losses_are_compiled_with_the_heads_settings(monkeypatch, compile, expected):
    from mmgscnn.models.decode_heads import gated_shape_head as module
    calls = []

    def record(fn, settings):
        calls.append(settings)
        return fn

    monkeypatch.setattr(module, 'compiled_function', record)
    model = build(tiny_model('fcn', head_kwargs=dict(compile=compile)))
    model(**_batch(model), mode='loss')
    assert calls == [expected]


class _OtherBoundaryLoss(torch.nn.Module):
    """A boundary loss that is not ours (same values as BoundaryBCELoss): it
    gets a float target and no ``target_masked``."""

    def __init__(self):
        super().__init__()
        from mmgscnn.models.losses import BoundaryBCELoss
        self.inner = BoundaryBCELoss(loss_weight=20.0)
        self.loss_name = 'loss_boundary'

    def forward(self, logits, target, valid):
        assert target.dtype == torch.float32
        return self.inner(logits, target, valid)


@pytest.mark.parametrize('radius', [1, 2])
def test_our_boundary_loss_takes_the_bool_masked_target_two_passes_shorter(radius):
    """With our BoundaryBCELoss the head makes a bool target, masked by
    ``valid`` (no float conversion, no product): two full-resolution passes
    fewer than another loss with a float target, the same value, and the
    configured radius."""
    from mmgscnn.benchmark.traffic import count_traffic
    from mmgscnn.models.losses import BoundaryBCELoss
    from mmgscnn.models.shape_stream import boundary_target
    torch.manual_seed(0)
    model = build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(radius=radius), loss_attention=None, loss_dual_task=None)))
    head = model.decode_head
    label = torch.zeros(2, 32, 48, dtype=torch.long)
    label[:, 8:20, 10:30] = 1
    label[:, :2] = 255
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(2, head.num_classes, 32, 48, generator=g)
    boundary = torch.randn(2, 1, 32, 48, generator=g)
    target, valid = boundary_target(label, 255, radius)
    expected = BoundaryBCELoss(loss_weight=20.0)(boundary, target, valid)
    counts, values = {}, {}
    for name, loss in [('ours', head.loss_boundary), ('other', _OtherBoundaryLoss())]:
        head.loss_boundary = loss
        b = boundary.clone().requires_grad_(True)

        def step():
            values[name] = head.shape_losses(seg, b, label)['loss_boundary']
            values[name].backward()
        counts[name] = count_traffic(step, (32, 48), training=True)['passes_full_res']
        torch.testing.assert_close(values[name], expected, rtol=1e-6, atol=1e-7)
    assert counts['other'] - counts['ours'] == 2


def test_attention_and_dual_task_losses_share_one_float32_copy_of_half_logits():
    from torch.utils._python_dispatch import TorchDispatchMode
    torch.manual_seed(0)
    model = build(tiny_model('fcn', head_kwargs=dict(loss_boundary=None)))
    head = model.decode_head
    label = torch.zeros(2, 32, 48, dtype=torch.long)
    label[:, 8:20, 10:30] = 1
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(2, head.num_classes, 32, 48, generator=g).bfloat16()
    boundary = torch.randn(2, 1, 32, 48, generator=g).bfloat16()
    upcasts = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if (isinstance(out, torch.Tensor) and out.dtype == torch.float32
                    and out.shape == seg.shape and func.overloadpacket.__name__ == '_to_copy'):
                upcasts.append(func)
            return out

    results = {}
    for half in (True, False):
        x = seg if half else seg.float()
        upcasts.clear()
        torch.manual_seed(0)
        with Count(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=half):
            results[half] = head.shape_losses(x, boundary if half else boundary.float(), label)
        assert len(upcasts) == (1 if half else 0)
    for key in ('loss_attention', 'loss_dual_task'):
        torch.testing.assert_close(results[True][key].float(), results[False][key],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('key,value,error,message', [
    ('loss_boundary', 'BoundaryBCELoss', ValueError,
     "GatedShapeHead.loss_boundary must be a loss config dict with a 'type' (or None to "
     "disable it), got 'BoundaryBCELoss'"),
    ('loss_attention', dict(threshold=0.5), ValueError,
     "GatedShapeHead.loss_attention must be a loss config dict with a 'type' (or None to "
     "disable it), got {'threshold': 0.5}"),
    ('loss_dual_task', dict(type='DualTaskLoss', los_weight=1.0), UnknownKeyError,
     "shape_head.loss_dual_task: unknown key 'los_weight' (DualTaskLoss does not take "
     "it); did you mean 'loss_weight'?"),
    ('fusion', 'ClassifierBoundaryFusion', ValueError,
     "GatedShapeHead.fusion must be a config dict, e.g. dict(channels=64) (the decoder's "
     "default fusion) or dict(type='ClassifierBoundaryFusion', channels=64), got "
     "'ClassifierBoundaryFusion'"),
    ('fusion', dict(type='NoSuchFusion'), KeyError,
     "GatedShapeHead.fusion.type='NoSuchFusion' is not registered; use "
     "'ASPPBoundaryFusion' or 'ClassifierBoundaryFusion' (or register your own fusion "
     "module)"),
    ('fusion', dict(chanels=8), UnknownKeyError,
     "shape_head.fusion: unknown key 'chanels' (ClassifierBoundaryFusion does not take "
     "it); did you mean 'channels'?"),
    ('boundary_target', dict(source='edges'), ValueError,
     "GatedShapeHead.boundary_target.source must be 'labels' or 'gt_edge_map', got "
     "'edges'"),
    ('boundary_target', dict(radious=2), UnknownKeyError,
     "shape_head.boundary_target: unknown key 'radious' (not a key of this section); "
     "did you mean 'radius'?"),
])
def test_config_errors_name_the_key_and_the_fix(key, value, error, message):
    cfg = tiny_model('fcn', head_kwargs={key: value})
    with pytest.raises(error, match=re.escape(message)):
        MODELS.build(cfg)


def test_shape_stream_and_decoder_config_errors():
    cfg = tiny_model('fcn')
    del cfg.shape_head.shape_stream['in_channels']
    with pytest.raises(ValueError, match=re.escape(
            'GatedShapeHead.shape_stream.in_channels is required: the channels of every '
            'feature level the backbone gives, e.g. [256, 512, 1024, 2048] for a '
            'ResNet-50/101')):
        MODELS.build(cfg)
    cfg = tiny_model('fcn', shape_stream=dict(chanels=(8, 8, 8, 4)))
    with pytest.raises(UnknownKeyError, match=re.escape(
            "shape_head.shape_stream: unknown key 'chanels' (ShapeStream does not take "
            "it); did you mean 'channels'?")):
        MODELS.build(cfg)
    cfg = tiny_model('fcn', shape_stream=dict(image_gradient=dict(mod='sobel')))
    with pytest.raises(UnknownKeyError, match=re.escape(
            "shape_head.shape_stream.image_gradient: unknown key 'mod'")):
        MODELS.build(cfg)
    cfg = dict(type='GatedShapeHead', decoder='FCNHead', **tiny_model('fcn').shape_head)
    with pytest.raises(ValueError, match=re.escape(
            "GatedShapeHead.decoder must be the config dict of an mmseg decode head, with a "
            "'type', got 'FCNHead'")):
        MODELS.build(cfg)
    cfg['decoder'] = dict(type='GatedShapeHead')
    with pytest.raises(ValueError, match='^GatedShapeHead.decoder cannot be another '
                       'GatedShapeHead$'):
        MODELS.build(cfg)


def test_head_settings_reach_their_parts(monkeypatch):
    """The head's ``init_cfg``, the decoder's ``align_corners`` as the
    stream's default, the default boundary target (labels, radius 1), the
    stream's compile region, and a custom stream type's own keys."""
    from mmgscnn.models.decode_heads import gated_shape_head as module
    from mmgscnn.models.shape_stream import ShapeStream
    model = build(tiny_model('fcn', align_corners=True, head_kwargs=dict(
        init_cfg=dict(type='Constant', val=0.25, layer='Conv2d'))))
    head = model.decode_head
    assert head.shape_stream.fuse.weight.eq(0.25).all()
    assert head.shape_stream.align_corners is True
    assert head.boundary_target == dict(source='labels', radius=1)
    head = build(tiny_model('fcn', head_kwargs=dict(
        boundary_target=dict(source='labels')))).decode_head
    assert head.boundary_target == dict(source='labels', radius=1)
    compiled = []
    monkeypatch.setattr(module, 'compile_module', lambda m, s: compiled.append((m, s)))
    head = build(tiny_model('fcn', head_kwargs=dict(compile=dict(losses=False)))).decode_head
    assert compiled == [(head.shape_stream, dict(stream=True, losses=False, mode='default',
                                                 dynamic=None))]

    @MODELS.register_module(force=True)
    class WiderShapeStream(ShapeStream):
        def __init__(self, *args, widen=1, **kwargs):
            super().__init__(*args, **kwargs)
            self.widen = widen

    try:
        head = build(tiny_model('fcn', shape_stream=dict(type='WiderShapeStream',
                                                          widen=2))).decode_head
    finally:
        MODELS._module_dict.pop('WiderShapeStream')
    assert type(head.shape_stream) is WiderShapeStream and head.shape_stream.widen == 2
    with pytest.raises(ValueError, match=re.escape(
            "GatedShapeHead.decoder must be the config dict of an mmseg decode head, with a "
            "'type', got {'channels': 4}")):
        MODELS.build(dict(type='GatedShapeHead', decoder=dict(channels=4),
                          **tiny_model('fcn').shape_head))


def test_losses_use_the_decoders_ignore_index():
    """A decoder with ``ignore_index=250``: pixels labelled 250 are left out
    of the attention and dual-task losses (255 would be read as a class)."""
    torch.manual_seed(0)
    model = build(tiny_model('fcn', ignore_index=250, head_kwargs=dict(loss_boundary=None)))
    head = model.decode_head
    label = torch.zeros(2, 32, 48, dtype=torch.long)
    label[:, 8:20, 10:30] = 1
    label[:, :4] = 250
    g = torch.Generator().manual_seed(0)
    seg = torch.randn(2, head.num_classes, 32, 48, generator=g)
    boundary = torch.randn(2, 1, 32, 48, generator=g) + 2.0
    torch.manual_seed(1)
    losses = head.shape_losses(seg, boundary, label)
    torch.manual_seed(1)
    expected = dict(
        loss_attention=head.loss_attention(seg, label, ignore_index=250,
                                           boundary_logits=boundary),
        loss_dual_task=head.loss_dual_task(seg, label, ignore_index=250))
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, msg=key)
