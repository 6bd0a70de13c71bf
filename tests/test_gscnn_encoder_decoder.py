"""mmgscnn.models.segmentors.gscnn_encoder_decoder: shape_head wrapping,
padding masks, binary heads, the boundary output of predict, slide
inference, the build-time probe of the feature levels, mmseg's inferencer."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.models import GSCNNEncoderDecoder, padding_mask
from mmgscnn.models.segmentors import FeaturesWithImage

from helpers import (TINY_CLASSES, draw_scene, make_batch, tiny_backbone, tiny_decoder,
                     tiny_model, trained_tiny)


def batch(model, sizes, training=True, binary=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs, samples = [], []
    for h, w in sizes:
        imgs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 3:, w // 2:] = 1
        if not binary:
            label[:, :, :w // 5] = 2
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training)


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_shape_head_wraps_the_plain_decode_head():
    cfg = tiny_model('psp')
    model = build(cfg)
    assert type(model.decode_head).__name__ == 'GatedShapeHead'
    assert type(model.decode_head.decoder).__name__ == 'PSPHead'
    cfg.pop('shape_head')
    with pytest.raises(TypeError, match='model.shape_head=dict'):
        build(cfg)


def test_padding_mask_from_the_metas():
    metas = [dict(padding_size=[0, 3, 0, 2]), dict(padding_size=[0, 0, 0, 0])]
    mask = padding_mask(metas, (6, 8), torch.device('cpu'))
    assert mask.shape == (2, 1, 6, 8)
    assert mask[0, 0, :4, :5].all() and not mask[0, 0, 4:].any() and not mask[0, 0, :, 5:].any()
    assert mask[1].all()
    assert padding_mask([dict(), dict(padding_size=[0, 0, 0, 0])], (6, 8), 'cpu') is None


def test_training_batches_carry_the_padding_to_the_shape_stream():
    model = build(tiny_model('fcn'))
    data = batch(model, [(40, 48), (32, 40)])   # padded to 40x48 (size_divisor 8)
    seen = []
    model.decode_head.shape_stream.register_forward_pre_hook(
        lambda m, args: seen.append(args[2]))
    model(data['inputs'], data['data_samples'], mode='loss')
    valid = seen[0]
    assert valid is not None and valid[0].all()
    assert valid[1, 0, :32, :40].all() and not valid[1, 0, 32:].any()


def test_binary_head_trains_with_every_loss():
    cfg = tiny_model('fcn', num_classes=2, out_channels=1, threshold=0.5,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                      loss_weight=1.0))
    model = build(cfg)
    data = batch(model, [(32, 40)] * 2, binary=True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    for key in ('decode.loss_boundary', 'decode.loss_attention', 'decode.loss_dual_task'):
        assert torch.isfinite(losses[key]), key
    assert losses['decode.loss_dual_task'] > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.decode_head.decoder.conv_seg.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        pred = model(data['inputs'], data['data_samples'], mode='predict')[0]
    assert pred.pred_sem_seg.shape == (32, 40) and pred.pred_boundary.shape == (32, 40)
    assert set(pred.pred_sem_seg.data.unique().tolist()) <= {0, 1}


def test_predict_restores_the_boundary_like_the_segmentation():
    """Padding removed, flip undone, resized to the original size."""
    model = build(tiny_model('sepaspp')).eval()
    torch.nn.init.normal_(model.decode_head.shape_stream.classifier.weight, std=3.0)
    data = batch(model, [(29, 37)], training=False)
    inputs = torch.nn.functional.pad(data['inputs'], (0, 3, 0, 3))   # 32x40
    ds = data['data_samples'][0]
    ds.set_metainfo(dict(ori_shape=(58, 74), flip=True, flip_direction='horizontal',
                         pad_shape=(32, 40), padding_size=[0, 3, 0, 3]))
    with torch.no_grad():
        pred = model.predict(inputs, data['data_samples'])[0]
        _, boundary = model.encode_decode_with_boundary(inputs, [ds.metainfo])
    assert pred.pred_boundary.shape == (58, 74)
    expected = boundary[..., :29, :37]
    expected = torch.nn.functional.interpolate(expected.flip(3), size=(58, 74),
                                               mode='bilinear').sigmoid()[0]
    torch.testing.assert_close(pred.pred_boundary.data, expected)
    unflipped = torch.nn.functional.interpolate(boundary[..., :29, :37], size=(58, 74),
                                                mode='bilinear').sigmoid()[0]
    assert (pred.pred_boundary.data - unflipped).abs().max() > 1e-3
    assert isinstance(model, GSCNNEncoderDecoder)


def test_cuda_code_path_gives_the_same_training_step_and_prediction(monkeypatch):
    """On CUDA the stream keeps its tensors channels-last and enlarges by
    blends of shifted copies; forced on the CPU, a training step and a
    prediction give what the plain path gives."""
    import mmgscnn.models.shape_stream.shape_stream as stream_module
    import mmgscnn.models.utils.upsample as upsample_module
    results = []
    for cuda_path in (False, True):
        monkeypatch.setattr(stream_module, '_channels_last_pays_off', lambda x: cuda_path)
        monkeypatch.setattr(upsample_module, '_blends_pay_off', lambda x: cuda_path)
        torch.manual_seed(0)
        model = build(tiny_model('sepaspp', shape_stream=dict(stem_channels=4)))
        data = batch(model, [(32, 40), (24, 40)])
        torch.manual_seed(1)
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.eval()
        with torch.no_grad():
            pred = model(data['inputs'], data['data_samples'], mode='predict')[0]
        results.append([total.detach()] + grads + [pred.pred_boundary.data,
                                                   pred.seg_logits.data])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('head', ['sepaspp', 'uper'])
def test_slide_inference_sizes_and_values_of_its_windows(head):
    cfg = tiny_model(head)
    cfg.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(24, 24))
    model = build(cfg).eval()
    data = make_batch(model, 67, 93, training=False)
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert preds[0].pred_sem_seg.shape == (67, 93)
    assert preds[0].pred_boundary.shape == (67, 93)
    assert model.out_channels == len(TINY_CLASSES)  # restored after predict
    # values: on the 67x93 input (not padded at test time) the windows start
    # at rows 0, 24, 35 and columns 0, 24, 48, 61; the top-left 24x24 pixels
    # lie in the first window only, rows 56.. and columns 80.. in the last
    # one: there they are that window's own prediction
    assert data['inputs'].shape[-2:] == (67, 93)
    for (y, x), (rows, cols) in [((0, 0), (slice(0, 24), slice(0, 24))),
                                 ((35, 61), (slice(56, 67), slice(80, 93)))]:
        window = data['inputs'][:1, :, y:y + 32, x:x + 32]
        meta = dict(ori_shape=(32, 32), img_shape=(32, 32), pad_shape=(32, 32),
                    padding_size=[0, 0, 0, 0])
        with torch.no_grad():
            seg, boundary = model.encode_decode_with_boundary(window, [meta])
        inside = (slice(rows.start - y, rows.stop - y), slice(cols.start - x, cols.stop - x))
        torch.testing.assert_close(preds[0].pred_boundary.data[0, rows, cols],
                                   boundary[0, 0][inside].sigmoid(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(preds[0].seg_logits.data[:, rows, cols],
                                   seg[0][(slice(None), ) + inside], rtol=1e-5, atol=1e-5)


def _hand_slide(model, inputs, valid, windows, crop=32):
    """Reference for slide inference: every window's logits from the decode
    head on the backbone's features, pasted into sums and divided by a
    per-pixel vote count, written out here (not mmseg's loop)."""
    n, _, h, w = inputs.shape
    dp = model.data_preprocessor
    seg = torch.zeros(n, model.out_channels, h, w)
    boundary = torch.zeros(n, 1, h, w)
    votes = torch.zeros(h, w)
    for y, x in windows:
        window = (Ellipsis, slice(y, y + crop), slice(x, x + crop))
        image = inputs[window]
        feats = FeaturesWithImage(list(model.backbone(image)), image,
                                  None if valid is None else valid[window], (dp.std, dp.mean))
        s, b = model.decode_head.predict_with_boundary(
            feats, [dict(img_shape=(crop, crop))] * n, None)
        seg[window] += s
        boundary[window] += b
        votes[window] += 1
    assert votes.min() >= 1
    return seg / votes, boundary / votes


@pytest.mark.parametrize('head,size,rows,cols', [
    # 57 - 32 = 24 + 1 and 81 - 32 = 2 * 24 + 1: one window more for the one
    # pixel row and column left (they lie in the last windows only)
    ('sepaspp', (57, 81), (0, 24, 25), (0, 24, 48, 49)),
    ('uper', (57, 81), (0, 24, 25), (0, 24, 48, 49)),
    # 56 - 32 = 24 and 80 - 32 = 2 * 24: the windows end exactly at the edge
    ('sepaspp', (56, 80), (0, 24), (0, 24, 48)),
])
def test_slide_inference_equals_a_hand_average_of_its_windows_with_padding(head, size, rows,
                                                                          cols):
    cfg = tiny_model(head)
    cfg.test_cfg = ConfigDict(mode='slide', crop_size=(32, 32), stride=(24, 24))
    torch.manual_seed(0)
    model = build(cfg).eval()
    h, w = size
    inputs = make_batch(model, h, w, n=3, training=False)['inputs']
    windows = [(y, x) for y in rows for x in cols]   # overlapping by 1 to 31 pixels
    # the second image's last 9 columns and 5 rows are padding
    metas = [dict(ori_shape=size, img_shape=size, pad_shape=size,
                  padding_size=[0, 0, 0, 0]) for _ in range(3)]
    metas[1].update(ori_shape=(h - 5, w - 9), padding_size=[0, 9, 0, 5])
    valid = torch.ones(3, 1, h, w, dtype=torch.bool)
    valid[1, :, h - 5:] = False
    valid[1, :, :, w - 9:] = False
    with torch.no_grad():
        seg, boundary = model.slide_inference_with_boundary(inputs, metas)
        ref_seg, ref_boundary = _hand_slide(model, inputs, valid, windows)
        _, unmasked = _hand_slide(model, inputs, None, windows)
        # mmseg's own sliding window, for the segmentation of unpadded images
        mmseg_seg = super(GSCNNEncoderDecoder, model).slide_inference(
            inputs[[0, 2]], [metas[0], metas[2]])
    assert seg.shape == (3, len(TINY_CLASSES), h, w) and boundary.shape == (3, 1, h, w)
    torch.testing.assert_close(seg, ref_seg, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(boundary, ref_boundary, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(seg[[0, 2]], mmseg_seg, rtol=1e-5, atol=1e-5)
    # the padding mask reaches the stream: without it the padded image's
    # boundary differs (the untrained stream's logits are about 1e-3), the
    # others' do not
    assert (boundary[1] - unmasked[1]).abs().max() > 1e-4
    torch.testing.assert_close(boundary[[0, 2]], unmasked[[0, 2]], rtol=1e-5, atol=1e-5)


def test_loss_adds_the_auxiliary_heads_losses():
    cfg = tiny_model('sepaspp')
    cfg.auxiliary_head = tiny_decoder(
        'fcn', in_index=2, in_channels=32, dropout_ratio=0.0,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
    model = build(cfg).train()
    data = make_batch(model, 40, 56)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    # the auxiliary head on the backbone's own features (batch statistics,
    # no dropout: the same features again), with its own loss
    feats = model.backbone(data['inputs'])
    aux = model.auxiliary_head.loss(feats, data['data_samples'], model.train_cfg)
    assert {'aux.loss_ce', 'aux.acc_seg', 'decode.loss_ce', 'decode.loss_boundary'} <= set(losses)
    torch.testing.assert_close(losses['aux.loss_ce'], aux['loss_ce'])
    torch.testing.assert_close(losses['aux.acc_seg'], aux['acc_seg'])


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


def test_wrong_channels_fail_at_build_with_expected_value():
    with pytest.raises(ValueError, match=r'set shape_stream.in_channels=\[8, 16, 32, 64\]'):
        build(tiny_model('fcn', shape_stream=dict(in_channels=[8, 16, 32, 128])))
    with pytest.raises(ValueError, match=r'lists 3 levels'):
        build(tiny_model('fcn', shape_stream=dict(in_channels=[8, 16, 32],
                                                  gate_indices=(1, 2), channels=(8, 8, 4))))


def test_backbone_that_rejects_the_probe_image_still_builds():
    # A 4-channel backbone rejects the 3-channel probe image: the check moves
    # to the first forward (with a warning) instead of failing the build.
    cfg = tiny_model('fcn', backbone=tiny_backbone(in_channels=4),
                     shape_stream=dict(in_channels=[8, 16, 32, 999]))
    model = build(cfg)
    feats = FeaturesWithImage(model.backbone(torch.zeros(1, 4, 32, 32)),
                              torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r'set shape_stream.in_channels=\[8, 16, 32, 64\]'):
        model.decode_head.forward_with_boundary(feats)


def test_mmseg_inferencer_runs_a_gscnn_model(tmp_path):
    from mmseg.apis import MMSegInferencer
    config, ckpt, _ = trained_tiny(tmp_path)
    inferencer = MMSegInferencer(model=config, weights=ckpt, device='cpu')
    image, _ = draw_scene(np.random.default_rng(5), 45, 61)
    result = inferencer(image, return_datasamples=True)
    assert result.pred_sem_seg.shape == (45, 61)
    assert result.pred_boundary.shape == (45, 61)
    assert int(result.pred_sem_seg.data.max()) < len(TINY_CLASSES)
    plain = inferencer(image)  # the dict form users get by default
    assert np.asarray(plain['predictions']).shape == (45, 61)
