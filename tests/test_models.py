"""Shape stream, gated convolution, GatedShapeHead on several heads/backbones."""
import copy

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.models import GatedSpatialConv, ShapeStream
from mmgscnn.models.shape_stream import ImageGradient

from helpers import TINY_CHANNELS, data_preprocessor, tiny_backbone, tiny_decoder, tiny_model

NUM_CLASSES = 4


def make_batch(model, h, w, n=2, seed=0, training=True):
    g = torch.Generator().manual_seed(seed)
    imgs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
            for _ in range(n)]
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 4:3 * h // 4, w // 3:] = 1
        label[:, :, :w // 6] = 2
        label[:, :3, :] = 255
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training)


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


# --------------------------------------------------------------------------- GCL
def test_gated_spatial_conv_shape_and_gradients():
    gcl = GatedSpatialConv(6, 5, kernel_size=3)
    x = torch.randn(2, 6, 9, 11, requires_grad=True)
    gate = torch.randn(2, 1, 9, 11, requires_grad=True)
    out = gcl(x, gate)
    assert out.shape == (2, 5, 9, 11)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and gate.grad.abs().sum() > 0


def test_gated_spatial_conv_alpha_zero_is_plain_conv():
    gcl = GatedSpatialConv(4, 3).eval()
    # Last norm of the attention net: weight 0, bias -inf -> alpha = sigmoid(-inf) = 0.
    norm = gcl.attention[2].norm
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.fill_(float('-inf'))
    x, gate = torch.randn(2, 4, 5, 7), torch.randn(2, 1, 5, 7)
    assert torch.equal(gcl.attention(torch.cat([x, gate], 1)), torch.zeros(2, 1, 5, 7))
    torch.testing.assert_close(gcl(x, gate), gcl.conv(x))
    # and a non-zero alpha does change the output
    with torch.no_grad():
        norm.bias.fill_(3.0)
    assert not torch.allclose(gcl(x, gate), gcl.conv(x))


def test_gated_spatial_conv_rejects_bad_gate():
    with pytest.raises(ValueError, match='gate must be'):
        GatedSpatialConv(4, 4)(torch.randn(1, 4, 5, 5), torch.randn(1, 2, 5, 5))


# ------------------------------------------------------------- image gradient
@pytest.mark.parametrize('method', ['sobel', 'canny'])
def test_image_gradient_constant_and_step(method):
    grad = ImageGradient(method)
    const = torch.full((1, 3, 16, 20), 97.0)
    # zero up to float rounding of the convolution
    torch.testing.assert_close(grad(const), torch.zeros(1, 1, 16, 20), atol=1e-6, rtol=0)
    step = torch.zeros(1, 3, 16, 20)
    step[..., 10:] = 200.0
    g = grad(step)[0, 0]
    assert g.shape == (16, 20)
    column_strength = g.sum(dim=0)
    peak = set(column_strength.topk(2).indices.tolist())
    assert peak & {9, 10}, f'peak at {peak}, step between columns 9 and 10'
    assert column_strength[:7].abs().max() < 1e-5 and column_strength[13:].abs().max() < 1e-5
    assert column_strength.max() > 1.0


def test_image_gradient_does_not_depend_on_mean_std():
    outs = []
    for mean, std in (([123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
                      ([0., 0., 0.], [1., 1., 1.]), ([10., 200., 50.], [3., 90., 7.])):
        cfg = tiny_model('fcn')
        cfg.data_preprocessor = ConfigDict(data_preprocessor(mean=mean, std=std))
        model = build(cfg)
        data = make_batch(model, 32, 40, seed=3)
        pixels = model.extract_feat(data['inputs']).image
        outs.append(model.decode_head.shape_stream.image_gradient(pixels))
        raw = torch.stack([d.float() for d in make_batch_raw(32, 40, seed=3)])
        torch.testing.assert_close(pixels, raw.flip(1), atol=1e-3, rtol=1e-5)  # bgr->rgb
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outs[0], outs[2], atol=1e-5, rtol=1e-4)


def make_batch_raw(h, w, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
            for _ in range(n)]


# --------------------------------------------------------------- shape stream
def test_shape_stream_output_stride():
    feats = [torch.randn(2, c, 9 if i == 0 else 5, 12 if i == 0 else 6)
             for i, c in enumerate(TINY_CHANNELS)]
    image = torch.rand(2, 3, 35, 47) * 255
    for stride, size in ((1, (35, 47)), (2, (18, 24)), (4, (9, 12))):
        stream = ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), stride=stride)
        logits, fused = stream(feats, image)
        assert logits.shape == fused.shape == (2, 1) + size
        assert fused.min() >= 0 and fused.max() <= 1


# ---------------------------------------------------- GatedShapeHead on heads
HEADS = ['sepaspp', 'psp', 'fcn', 'uper']


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


@pytest.mark.parametrize('head', ['sepaspp', 'uper'])
def test_slide_inference_matches_whole_shape(head):
    cfg = tiny_model(head)
    cfg.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(24, 24))
    model = build(cfg).eval()
    data = make_batch(model, 67, 93, training=False)
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_sem_seg.shape == (67, 93)
    assert preds[0].pred_boundary.shape == (67, 93)
    assert model.out_channels == NUM_CLASSES  # restored after predict


def test_predict_without_boundary_and_plain_model_equivalence():
    cfg = tiny_model('psp')
    cfg.test_cfg = ConfigDict(mode='whole', with_boundary=False)
    model = build(cfg).eval()
    data = make_batch(model, 40, 56, training=False)
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
        logits = model(data['inputs'], data['data_samples'], mode='tensor')
    assert 'pred_boundary' not in preds[0]
    from mmseg.models.utils import resize
    expected = resize(logits, size=(40, 56), mode='bilinear').argmax(1)
    assert torch.equal(preds[0].pred_sem_seg.data[0], expected[0])


def test_stride2_shape_stream_trains():
    model = build(tiny_model('sepaspp', shape_stream=dict(stride=2,
                                                           image_gradient=dict(method='canny'))))
    data = make_batch(model, 48, 64)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    _, boundary_logits = model.decode_head.forward_with_boundary(
        model.extract_feat(data['inputs']))
    assert boundary_logits.shape[-2:] == (24, 32)


# ---------------------------------------------------------- other backbones
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


# ------------------------------------------------------------- build errors
def test_wrong_level_index_fails_at_build():
    with pytest.raises(ValueError, match=r'shape_stream.gate_indices.*0\.\.3'):
        build(tiny_model('fcn', shape_stream=dict(gate_indices=(1, 2, 4))))


def test_wrong_channels_fail_at_build_with_expected_value():
    with pytest.raises(ValueError, match=r'set shape_stream.in_channels=\[8, 16, 32, 64\]'):
        build(tiny_model('fcn', shape_stream=dict(in_channels=[8, 16, 32, 128])))
    with pytest.raises(ValueError, match=r'lists 3 levels'):
        build(tiny_model('fcn', shape_stream=dict(in_channels=[8, 16, 32],
                                                  gate_indices=(1, 2), channels=(8, 8, 4))))


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
    with pytest.raises(RuntimeError, match='GSCNNEncoderDecoder'):
        model(data['inputs'], data['data_samples'], mode='loss')


# ------------------------------------------------- the shipped Cityscapes configs
def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name,baseline', [
    ('gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024',
     'deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ('gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024',
     'pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
])
def test_shipped_config_parameter_overhead(name, baseline, tmp_path):
    import os.path as osp
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    plain_file = tmp_path / 'baseline.py'
    plain_file.write_text(f"_base_ = ['mmseg::{baseline}']\n")
    models, model_cfgs = [], []
    for path in (osp.join(repo, 'configs', 'gscnn', name + '.py'), str(plain_file)):
        cfg = Config.fromfile(path)
        model_cfgs.append(cfg.model.to_dict())
        cfg.model.pretrained = None
        cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
        model_cfg = copy.deepcopy(cfg.model)
        text = str(model_cfg).replace("'SyncBN'", "'BN'")
        models.append(MODELS.build(Config(dict(m=eval(text))).m))
    # The GSCNN config is the baseline's model plus the shape stream, nothing else.
    gscnn_cfg, plain_cfg = model_cfgs
    assert gscnn_cfg.pop('type') == 'GSCNNEncoderDecoder' and 'shape_head' in gscnn_cfg
    gscnn_cfg.pop('shape_head')
    plain_cfg.pop('type')
    assert gscnn_cfg == plain_cfg
    gscnn, plain = models
    overhead = _params(gscnn) / _params(plain) - 1
    print(f'{name}: {_params(plain)} -> {_params(gscnn)} parameters, '
          f'+{100 * overhead:.2f}%')
    assert 0 < overhead < 0.01
    assert type(gscnn.decode_head.decoder) is type(plain.decode_head)


def test_shape_stream_checkpointing_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    streams = [ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), with_cp=cp) for cp in (False, True)]
    streams[1].load_state_dict(streams[0].state_dict())
    image = torch.rand(2, 3, 24, 32) * 255
    results = []
    for stream in streams:
        feats = [torch.randn(2, c, 6 if i == 0 else 3, 8 if i == 0 else 4,
                             generator=torch.Generator().manual_seed(i)).requires_grad_()
                 for i, c in enumerate(TINY_CHANNELS)]
        logits, fused = stream(feats, image)
        (logits.square().mean() + fused.mean()).backward()
        results.append((logits, [f.grad for f in feats],
                        [p.grad for p in stream.parameters()]))
    (l0, f0, p0), (l1, f1, p1) = results
    torch.testing.assert_close(l0, l1)
    for a, b in zip(f0 + p0, f1 + p1):
        torch.testing.assert_close(a, b)


def test_backbone_that_rejects_the_probe_image_still_builds():
    # A 4-channel backbone rejects the 3-channel probe image: the check moves
    # to the first forward (with a warning) instead of failing the build.
    from mmgscnn.models.segmentors import FeaturesWithImage
    cfg = tiny_model('fcn', backbone=tiny_backbone(in_channels=4),
                     shape_stream=dict(in_channels=[8, 16, 32, 999]))
    model = build(cfg)
    feats = FeaturesWithImage(model.backbone(torch.zeros(1, 4, 32, 32)),
                              torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r'set shape_stream.in_channels=\[8, 16, 32, 64\]'):
        model.decode_head.forward_with_boundary(feats)
