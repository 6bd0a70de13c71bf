"""mmgscnn.models.shape_stream.shape_stream: layouts, stem, padding, equivalences."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmgscnn.models import ShapeStream

from helpers import TINY_CHANNELS, tiny_model


def feats_for(h, w, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [(h // 4, w // 4)] + [(h // 8, w // 8)] * 3
    return [torch.randn(n, c, *s, generator=g) for c, s in zip(TINY_CHANNELS, sizes)]


def build(**kwargs):
    torch.manual_seed(0)
    stream = ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), **kwargs)
    stream.init_weights()
    return stream.eval()


def reference_forward(stream, feats, image):
    """The official code's layout written out: enlarge the input level, then
    every residual block, 1x1 reduction and GCL at full resolution."""
    size = image.shape[-2:]
    up = lambda t: F.interpolate(t, size=size, mode='bilinear', align_corners=False)  # noqa
    x = up(stream.input_conv(feats[0]))
    for i, level in enumerate(stream.gate_indices):
        x = stream.blocks[i](x)
        x = stream.gates[i](stream.reduces[i](x), up(stream.gate_convs[i](feats[level])))
    return stream.classifier(x)


def test_paper_layout_computes_the_official_stream():
    stream = build(first_block_low_res=False, stem_channels=0)
    feats, image = feats_for(32, 48), torch.rand(2, 3, 32, 48) * 255
    with torch.no_grad():
        logits, fused = stream(feats, image)
        torch.testing.assert_close(logits, reference_forward(stream, feats, image))
    assert fused.shape == logits.shape == (2, 1, 32, 48)


def test_low_res_first_block_runs_at_the_input_level_resolution():
    stream = build(first_block_low_res=True, stem_channels=0)
    seen = []
    stream.blocks[0].register_forward_hook(lambda m, a, out: seen.append(out.shape[-2:]))
    stream.blocks[1].register_forward_hook(lambda m, a, out: seen.append(out.shape[-2:]))
    with torch.no_grad():
        logits, _ = stream(feats_for(32, 48), torch.rand(2, 3, 32, 48) * 255)
    assert seen == [(8, 12), (32, 48)] and logits.shape[-2:] == (32, 48)


def test_stem_gives_the_stream_a_learned_full_resolution_input():
    feats = feats_for(32, 48)
    for stem, expect_gradient in ((8, True), (0, False)):
        stream = build(stem_channels=stem).train()
        image = (torch.rand(2, 3, 32, 48) * 255).requires_grad_(True)
        logits, _ = stream(feats, image)
        # one full-resolution pixel: only a learned full-resolution input
        # (the stem) makes the boundary logit there depend on the image
        logits[0, 0, 16, 20].backward()
        grad = image.grad
        assert (grad is not None and grad[0, :, 15:18, 19:22].abs().sum() > 0) == \
            expect_gradient
    assert build(stem_channels=8).gates[0].conv.in_channels == 8 + 8


def test_image_gradient_is_zero_across_the_padding_border():
    stream = build(stem_channels=0)
    image = torch.full((1, 3, 32, 48), 200.0)
    image[..., :, 40:] = 117.0     # padded area: the mean colour after un-normalising
    valid = torch.ones(1, 1, 32, 48, dtype=torch.bool)
    valid[..., 40:] = False
    _, grad = stream.image_inputs(image, (32, 48), None)
    assert grad[0, 0, :, 39:41].min() > 0.1           # the seam is an edge ...
    _, grad = stream.image_inputs(image, (32, 48), valid)
    # ... unless masked (flat regions: zero up to the rounding of one 27-tap sum)
    assert grad[..., 39:].abs().max() == 0 and grad.abs().max() < 1e-6
    # real edges away from the padding stay
    image[..., :, 10:] = 20.0
    _, grad = stream.image_inputs(image, (32, 48), valid)
    assert grad[0, 0, :, 9:11].min() > 0.1


@pytest.mark.parametrize('first_block_low_res,stem', [(True, 8), (False, 0)])
def test_checkpointing_changes_nothing(first_block_low_res, stem):
    feats, image = feats_for(32, 48), torch.rand(2, 3, 32, 48) * 255
    results = []
    for with_cp in (False, True):
        stream = build(first_block_low_res=first_block_low_res, stem_channels=stem,
                       with_cp=with_cp).train()
        fs = [f.clone().requires_grad_(True) for f in feats]
        logits, fused = stream(fs, image)
        (logits.square().mean() + fused.mean()).backward()
        results.append([logits, fused] + [f.grad for f in fs] +
                       [p.grad for p in stream.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bad_stem_width_names_the_key():
    with pytest.raises(ValueError, match='shape_stream.stem_channels'):
        ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), stem_channels=-1)


def test_shape_stream_output_stride():
    feats = [torch.randn(2, c, 9 if i == 0 else 5, 12 if i == 0 else 6)
             for i, c in enumerate(TINY_CHANNELS)]
    image = torch.rand(2, 3, 35, 47) * 255
    for stride, size in ((1, (35, 47)), (2, (18, 24)), (4, (9, 12))):
        stream = ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), stride=stride)
        logits, fused = stream(feats, image)
        assert logits.shape == fused.shape == (2, 1) + size
        assert fused.min() >= 0 and fused.max() <= 1


def test_wrong_level_index_fails_at_build():
    with pytest.raises(ValueError, match=r'shape_stream.gate_indices.*0\.\.3'):
        MODELS.build(tiny_model('fcn', shape_stream=dict(gate_indices=(1, 2, 4))))


def test_shape_stream_checkpointing_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    streams = [ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), with_cp=cp)
               for cp in (False, True)]
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


def test_fewer_backbone_levels_get_one_consistent_proposal():
    # out_indices=(1, 2, 3): 3 levels (16, 32, 64 channels) instead of 4
    from helpers import tiny_backbone
    from mmgscnn.models.shape_stream.shape_stream import consistent_levels
    cfg = tiny_model('fcn', backbone=tiny_backbone(out_indices=(1, 2, 3)))
    cfg.decode_head.in_index = 2
    proposal = (r'shape_stream\.in_channels=\[16, 32, 64\], in_index=0, '
                r'gate_indices=\(1, 2\), channels=\(8, 8, 8\)')
    with pytest.raises(ValueError, match='give 3 levels .*set ' + proposal):
        MODELS.build(cfg)
    # following only half of it (in_channels) names the same whole proposal
    cfg.shape_head.shape_stream.in_channels = [16, 32, 64]
    with pytest.raises(ValueError, match=r'gate_indices: level 3 does not exist.*' + proposal):
        MODELS.build(cfg)
    cfg.shape_head.shape_stream.update(in_index=0, gate_indices=(1, 2), channels=(8, 8, 8))
    MODELS.build(cfg)    # the proposal builds
    # enough levels: the gates keep their number, channels are left alone
    assert consistent_levels([8, 16, 32, 64, 128], 0, (1, 2, 3), (8, 8, 8, 4)) == (
        'shape_stream.in_channels=[8, 16, 32, 64, 128], in_index=0, gate_indices=(2, 3, 4)')
    assert consistent_levels([64], 0, (1, 2, 3), (8, 8, 8, 4)).endswith(
        'gate_indices=(0,), channels=(8, 8)')


@pytest.mark.parametrize('stem_norm', ['bn', 'none'])
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('grad', [False, True])
def test_stream_with_stem_affine_and_padding_equals_the_frozen_reference(stem_norm, stride,
                                                                         grad):
    """The stream fed the normalised image with ``pixel_affine`` and a
    padding mask equals the frozen pre-rewrite stream
    (``reference_stream.shape_stream``, fed the pixels), float64: logits,
    fused map and (with grad) the gradients of the stream's parameters;
    with a stem with BN or with none (conv bias + ReLU, the fused form at
    inference), stride 1 and 2 (area-pooled image and mask)."""
    import reference_stream
    torch.manual_seed(stride)
    stream = ShapeStream(TINY_CHANNELS, channels=(8, 8, 4, 4), stride=stride,
                         stem_channels=8).double()
    if stem_norm == 'none':
        from mmcv.cnn import ConvModule
        stream.stem = ConvModule(4, 8, 3, padding=1, norm_cfg=None).double()
    stream.init_weights()
    with torch.no_grad():
        for m in stream.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
        stream.fuse.weight.copy_(torch.tensor([1.5, -2.0]).view(1, 2, 1, 1))
        stream.classifier.weight.normal_(0, 1.0)
    stream.eval()
    g = torch.Generator().manual_seed(5)
    feats = [f.double() for f in feats_for(32, 48, seed=1)]
    pixels = torch.rand(2, 3, 32, 48, generator=g, dtype=torch.float64) * 255
    pixels[..., 8:20, 10:30] = 250.0
    std = torch.tensor([58.4, 57.1, 57.4], dtype=torch.float64)
    mean = torch.tensor([123.7, 116.3, 103.5], dtype=torch.float64)
    image = (pixels - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    valid = torch.ones(2, 1, 32, 48, dtype=torch.bool)
    valid[0, ..., 40:] = False
    valid[1, ..., 28:, :] = False
    results = []
    for ref in (False, True):
        stream.zero_grad()
        with torch.set_grad_enabled(grad):
            if ref:
                out = reference_stream.shape_stream(stream, feats, pixels, valid,
                                                    cuda_path=False)
            else:
                out = stream(feats, image, valid, pixel_affine=(std, mean))
        if grad:
            (out[0].square().mean() + out[1].mean()).backward()
        results.append(list(out) + [p.grad for p in stream.parameters() if grad])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    assert results[0][1].std() > 1e-3


def test_layer_configs_and_defaults_reach_every_module():
    """conv_cfg, norm_cfg and act_cfg reach the stem, the blocks, the
    reductions, the gate convolutions and the GCLs; the one-channel layers
    have no bias; the defaults are those documented."""
    from mmcv.cnn.bricks import Conv2dAdaptivePadding
    stream = ShapeStream(TINY_CHANNELS, channels=(8, 6, 4, 4),
                         conv_cfg=dict(type='Conv2dAdaptivePadding'),
                         norm_cfg=dict(type='GN', num_groups=1),
                         act_cfg=dict(type='LeakyReLU'),
                         image_gradient=dict(method='canny'), align_corners=True,
                         with_cp=True, channels_last=False)
    assert (stream.with_cp, stream.channels_last, stream.align_corners) == (True, False, True)
    assert stream.image_gradient.method == 'canny'
    assert type(stream.input_conv.conv) is Conv2dAdaptivePadding
    assert not stream.input_conv.with_norm and not stream.input_conv.with_activation
    assert type(stream.stem.conv) is Conv2dAdaptivePadding
    assert isinstance(stream.stem.norm, nn.GroupNorm)
    assert isinstance(stream.stem.activate, nn.LeakyReLU)
    for block, reduce, gate_conv, gcl in zip(stream.blocks, stream.reduces, stream.gate_convs,
                                            stream.gates):
        assert type(block.conv1) is Conv2dAdaptivePadding
        assert isinstance(block.norm1, nn.GroupNorm)
        assert type(reduce.conv) is Conv2dAdaptivePadding
        assert not reduce.with_norm and not reduce.with_activation
        assert type(gate_conv.conv) is Conv2dAdaptivePadding
        assert gate_conv.conv.kernel_size == (1, 1) and gate_conv.conv.bias is None
        assert not gate_conv.with_norm and not gate_conv.with_activation
        assert type(gcl.conv) is Conv2dAdaptivePadding
        assert isinstance(gcl.attention[0], nn.GroupNorm)
        assert isinstance(gcl.attention[1].activate, nn.LeakyReLU)
        assert gcl.conv.kernel_size == (1, 1)
    assert stream.classifier.bias is None and stream.fuse.bias is None
    default = ShapeStream(TINY_CHANNELS)
    assert (default.first_block_low_res, default.with_cp, default.channels_last,
            default.align_corners) == (True, False, True, False)
    assert default.stem.conv.out_channels == 8 and default.image_gradient.method == 'sobel'
    assert type(default.stem.conv) is nn.Conv2d and isinstance(default.stem.norm,
                                                              nn.BatchNorm2d)
    assert isinstance(default.stem.activate, nn.ReLU)
    assert ShapeStream(TINY_CHANNELS, gcl_kernel_size=3).gates[1].conv.kernel_size == (3, 3)


def test_stem_of_any_conv_type_reads_pixels_over_255_and_the_gradient():
    """The general stem path (a conv type other than nn.Conv2d) equals the
    plain one on the same weights (whose fast path the float64 reference
    tests pin): stem(cat(pixels / 255, gradient)), in training and eval."""
    from mmcv.cnn.bricks import Conv2dAdaptivePadding
    plain = build().double()
    other = build(conv_cfg=dict(type='Conv2dAdaptivePadding')).double()
    other.load_state_dict(plain.state_dict())
    assert type(other.stem.conv) is Conv2dAdaptivePadding
    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 16, 24, generator=g, dtype=torch.float64) * 255
    for training in (True, False):
        plain.train(training), other.train(training)
        buf = plain._image_buffer(image, (16, 24))
        a, b = plain._stem(buf, torch.float64), other._stem(buf, torch.float64)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_stem_runs_one_fused_conv_relu_only_at_inference_with_its_norm_folded(monkeypatch):
    from torch.utils._python_dispatch import TorchDispatchMode
    from mmgscnn.deploy.fuse_bn import fuse_bn

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if 'conv2d_relu' in str(func):
                Count.calls += 1
            return func(*args, **(kwargs or {}))

    def stem_calls(stream, grad=False):
        Count.calls = 0
        buf = stream._image_buffer(torch.rand(1, 3, 16, 24) * 255, (16, 24))
        with torch.set_grad_enabled(grad), Count():
            out = stream._stem(buf, torch.float32)
        return Count.calls, out

    plain = build()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # statistics that fold into a non-zero bias
        for t in (plain.stem.bn.bias, plain.stem.bn.running_mean):
            t.copy_(torch.randn(t.shape, generator=g))
        plain.stem.bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
    state = plain.state_dict()
    calls, expected = stem_calls(plain)
    assert calls == 0  # its BN is not folded
    folded = build()
    folded.load_state_dict(state)
    folded = fuse_bn(folded, conv_act=False)
    assert folded.stem.conv.bias.abs().max() > 0.1
    calls, out = stem_calls(folded)
    assert calls == 1
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert stem_calls(folded, grad=True)[0] == 0
    leaky = fuse_bn(build(act_cfg=dict(type='LeakyReLU')), conv_act=False)
    assert stem_calls(leaky)[0] == 0
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    assert stem_calls(folded)[0] == 0


def test_no_gradient_reaches_the_image_without_a_stem():
    stream = build(stem_channels=0).train()
    image = (torch.rand(2, 3, 32, 48) * 255).requires_grad_(True)
    logits, fused = stream(feats_for(32, 48), image)
    (logits.sum() + fused.sum()).backward()
    assert image.grad is None


def test_config_errors_name_the_key_and_the_fix():
    with pytest.raises(ValueError, match=r'shape_stream\.in_index: level 7 does not exist.*'
                                         r'in_index=0, gate_indices=\(1, 2, 3\)'):
        ShapeStream(TINY_CHANNELS, in_index=7)
    with pytest.raises(ValueError, match=r'^shape_stream\.gate_indices must name at least one '
                                         r'level$'):
        ShapeStream(TINY_CHANNELS, gate_indices=())
    with pytest.raises(ValueError, match=r'needs len\(gate_indices\) \+ 1 = 4 widths, got '
                                         r'\[8, 8\]'):
        ShapeStream(TINY_CHANNELS, channels=(8, 8))
    with pytest.raises(ValueError, match=r'shape_stream\.stride must be an integer >= 1, got '
                                         r'1\.5'):
        ShapeStream(TINY_CHANNELS, stride=1.5)
    with pytest.raises(ValueError, match=r'shape_stream\.stem_channels must be an integer '
                                         r'>= 0 \(0: no stem\), got -1'):
        ShapeStream(TINY_CHANNELS, stem_channels=-1)
    stream = ShapeStream(TINY_CHANNELS)
    with pytest.raises(ValueError, match=r'give 3 levels with channels \[8, 16, 32\]: set '
                                         r'shape_stream\.in_channels=\[8, 16, 32\], in_index=0, '
                                         r'gate_indices=\(1, 2\)'):
        stream.check_inputs([torch.zeros(1, c, 4, 4) for c in TINY_CHANNELS[:3]])
    with pytest.raises(ValueError, match=r'does not match the channels the backbone \(and '
                                         r'neck\) give: \[8, 16, 32, 65\]; set '
                                         r'shape_stream\.in_channels=\[8, 16, 32, 65\]'):
        stream.check_inputs([torch.zeros(1, c, 4, 4) for c in [8, 16, 32, 65]])


def test_image_inputs_take_the_normalised_image_with_its_affine():
    stream = build()
    pixels = torch.rand(2, 3, 16, 24) * 255
    std, mean = torch.tensor([58.4, 57.1, 57.4]), torch.tensor([123.7, 116.3, 103.5])
    normalised = (pixels - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    for a, b in zip(stream.image_inputs(normalised, (16, 24), None, (std, mean)),
                    stream.image_inputs(pixels, (16, 24))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_stride2_padding_mask_is_area_averaged():
    """At stride 2 a stream pixel is valid only if all four image pixels it
    averages are (an area resize of the mask, then >= 1)."""
    stream = build(stride=2, stem_channels=0)
    image = torch.full((1, 3, 16, 24), 200.0)
    valid = torch.ones(1, 1, 16, 24, dtype=torch.bool)
    valid[..., 13:] = False  # column 13 is padding: stream column 6 is partly padding
    image[..., 12:] = 20.0   # an edge between stream columns 5 and 6
    _, grad = stream.image_inputs(image, (8, 12), valid)
    assert grad[0, 0, :, 5].abs().max() == 0   # within one pixel of invalid column 6
    _, unmasked = stream.image_inputs(image, (8, 12), None)
    assert unmasked[0, 0, :, 5].min() > 0.1


def test_stream_without_activations_and_with_corner_aligned_enlargement():
    stream = build(act_cfg=None, align_corners=True).train()
    assert not stream.stem.with_activation
    logits, fused = stream(feats_for(32, 48), torch.rand(2, 3, 32, 48) * 255)
    assert logits.shape == fused.shape == (2, 1, 32, 48)
    x = torch.randn(1, 4, 5, 7)
    torch.testing.assert_close(stream._enlarge(x, (9, 13)),
                               F.interpolate(x, size=(9, 13), mode='bilinear',
                                             align_corners=True))
