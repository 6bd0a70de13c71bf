"""The issue-21 rewrites of the shape stream (enlargement as one transposed
convolution, no full-resolution concatenation of the stem's features, the
gating moved past the GCL's bias-free 1x1 conv, the 1/255 folded into the
stem, the Sobel filters in two passes over one padding) against a frozen copy of the code they replaced (``reference_stream``):
equal outputs, gradients and BN running statistics in float64, on the CPU
and the CUDA code paths (run here on the CPU)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import reference_stream as ref
from mmgscnn.models import GatedSpatialConv, ShapeStream
from mmgscnn.models.shape_stream import shape_stream as stream_module
from mmgscnn.models.shape_stream.image_gradient import (pixels_and_sobel, sobel, sobel_kernels,
                                                        sobel_magnitude)
from mmgscnn.models.utils import enlarge_bilinear, upsample, upsample_bilinear

from helpers import TINY_CHANNELS

D = torch.float64


def grads(outputs, inputs, seed=0):
    """Gradients of a random projection of ``outputs`` w.r.t. ``inputs``."""
    g = torch.Generator().manual_seed(seed)
    total = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outputs)
    return torch.autograd.grad(total, inputs, allow_unused=True, retain_graph=True)


def assert_all_close(a, b):
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
            continue
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ the enlargement
@pytest.mark.parametrize('shape,factors', [((3, 5), (2, 2)), ((4, 6), (4, 4)),
                                           ((2, 3), (8, 8)), ((5, 4), (8, 2)),
                                           ((1, 1), (4, 8)), ((3, 7), (3, 1)),
                                           ((6, 3), (2, 5))])
@pytest.mark.parametrize('channels_last', [False, True])
def test_enlargement_equals_interpolate_and_the_replaced_blends(shape, factors, channels_last):
    x = torch.randn(2, 3, *shape, dtype=D)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    size = (shape[0] * factors[0], shape[1] * factors[1])
    ours = enlarge_bilinear(x, *factors)
    assert ours.shape == (2, 3) + size
    if channels_last and shape != (1, 1):  # a 1x1 map has both layouts
        assert ours.is_contiguous(memory_format=torch.channels_last)
    interp = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    blends = ref.enlarge_bilinear(x, *factors)
    for other in (interp, blends):  # every pixel, borders included
        torch.testing.assert_close(ours, other, rtol=0, atol=1e-12)
        assert_all_close(grads([ours], [x]), grads([other], [x]))


def test_enlargement_is_one_kernel_at_the_output_resolution():
    from mmgscnn.benchmark.traffic import count_traffic
    x = torch.randn(2, 4, 8, 16, requires_grad=True)
    out = count_traffic(lambda: enlarge_bilinear(x, 8, 8).sum().backward(), (64, 128),
                        training=True)
    # forward: the transposed convolution; backward: its strided convolution
    assert out['ops_full_res'] == {'convolution': 1, 'sum': 1, 'convolution_backward': 1}


def test_enlargement_keeps_the_dtype_under_autocast():
    x = torch.randn(1, 2, 4, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = enlarge_bilinear(x, 4, 4)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, F.interpolate(x, size=(16, 20), mode='bilinear'))
    half = enlarge_bilinear(x.bfloat16(), 2, 2)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), F.interpolate(x.bfloat16().float(), size=(8, 10),
                                                           mode='bilinear'),
                               rtol=1e-2, atol=1e-2)


def test_upsample_takes_the_transposed_convolution_only_on_the_cuda_path(monkeypatch):
    x = torch.randn(1, 2, 4, 4, dtype=D)
    calls = []
    monkeypatch.setattr(upsample, 'enlarge_bilinear',
                        lambda *a: calls.append(a[1:]) or enlarge_bilinear(*a))
    upsample_bilinear(x, (16, 16))
    assert calls == []
    monkeypatch.setattr(upsample, '_blends_pay_off', lambda t: True)
    y = upsample_bilinear(x, (16, 8))
    assert calls == [(4, 2)]
    torch.testing.assert_close(y, F.interpolate(x, size=(16, 8), mode='bilinear'),
                               rtol=0, atol=1e-12)
    upsample_bilinear(x, (10, 8))  # fractional factor: F.interpolate
    assert calls == [(4, 2)]


# ---------------------------------------------------------- the image gradient
@pytest.mark.parametrize('sigma', [0.0, 1.4])
@pytest.mark.parametrize('channels', [1, 3])
def test_sobel_equals_the_replaced_separable_passes(sigma, channels):
    x = torch.rand(2, channels, 13, 17, dtype=D) * 255
    s, d = sobel_kernels(sigma, 'cpu', D)
    for new, old in zip(sobel(x, sigma), ref.sobel(x, s, d)):
        torch.testing.assert_close(new, old, rtol=1e-12, atol=1e-12)


def test_sobel_magnitude_equals_the_replaced_one_in_fewer_passes():
    from mmgscnn.benchmark.traffic import count_traffic
    image = torch.rand(2, 3, 16, 24, dtype=D) * 255
    image[:, :, 8:, :10], image[:, :, 8:, 10:] = 255.0, 0.0  # a step: reaches the clamp at 1
    new = sobel_magnitude(image)
    old = ref.sobel_magnitude(image, *ref.sobel_kernels(image))
    assert abs(new.max() - 1) < 1e-12 and old.max() == 1
    torch.testing.assert_close(new, old, rtol=1e-12, atol=1e-12)
    counted = count_traffic(lambda: sobel_magnitude(image.float()), (16, 24), training=False)
    # channel sum, padding, two 1-D passes, hypot, clamp (was 15)
    assert counted['passes_full_res'] == 6, counted['ops_full_res']


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_constant_image_has_exactly_zero_gradient(dtype):
    image = torch.full((1, 3, 9, 10), 117.3, dtype=dtype)
    assert torch.count_nonzero(sobel_magnitude(image)) == 0
    for g in sobel(image / 255.0):  # (with smoothing neither form is exact)
        assert torch.count_nonzero(g) == 0


MEAN = torch.tensor([123.675, 116.28, 103.53], dtype=D)  # mmseg's Cityscapes configs
STD = torch.tensor([58.395, 57.12, 57.375], dtype=D)


def normalised(pixels):
    return (pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)


@pytest.mark.parametrize('affine', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
def test_pixels_and_sobel_equal_unnormalising_sobel_and_concatenating(affine, channels_last):
    pixels = torch.rand(2, 3, 13, 17, dtype=D) * 255
    pixels[:, :, 6:, :9] = 255.0  # a step that reaches the clamp at 1
    pixels[:, :, 6:, 9:] = 0.0
    x, args = (normalised(pixels), (STD, MEAN)) if affine else (pixels, (None, None))
    buf = pixels_and_sobel(x, *args, channels_last=channels_last)
    assert buf.shape == (2, 5, 13, 17) and buf.dtype == D
    assert buf.is_contiguous(memory_format=torch.channels_last) == channels_last
    old = ref.sobel_magnitude(pixels, *ref.sobel_kernels(pixels))
    assert old.max() == 1
    torch.testing.assert_close(buf[:, :3], pixels, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(buf[:, 3:4], old, rtol=1e-12, atol=1e-12)


def test_pixels_and_sobel_pass_gradients_to_the_pixels_only():
    pixels = (torch.rand(1, 3, 8, 9, dtype=D) * 255)
    x = normalised(pixels).requires_grad_(True)
    buf = pixels_and_sobel(x, STD, MEAN)
    weights = torch.randn(buf.shape, dtype=D)
    grad, = torch.autograd.grad((buf * weights).sum(), x)
    # d pixels / d x = std per channel; the gradient map is data, not learned
    torch.testing.assert_close(grad, weights[:, :3] * STD.view(1, 3, 1, 1))
    torch.testing.assert_close(buf.detach(), pixels_and_sobel(x.detach(), STD, MEAN))


def test_pixels_and_sobel_is_one_convolution_and_three_passes():
    from mmgscnn.benchmark.traffic import count_traffic
    x = normalised(torch.rand(2, 3, 16, 24, dtype=D) * 255).float()
    counted = count_traffic(lambda: pixels_and_sobel(x, STD, MEAN), (16, 24), training=False)
    # replicate padding, hypot, clamp (was: un-normalising 2, channel sum,
    # padding, a depthwise pass, hypot, clamp, concatenation, layout copy)
    assert counted['passes_full_res'] == 3, counted['ops_full_res']
    assert counted['conv_ops_full_res'] == 1


# ------------------------------------------------------------------- the GCL
def random_batch_norms(module, seed):
    """Non-trivial affine parameters and running statistics in every BN."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                for t in (m.weight, m.bias, m.running_mean):
                    t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g,
                                               dtype=D) + 0.5)


def bn_state(module):
    return [t.clone() for k, t in module.state_dict().items()
            if 'running' in k or 'num_batches' in k]


@pytest.mark.parametrize('kernel_size', [1, 3])
@pytest.mark.parametrize('with_extra', [False, True])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('channels_last', [False, True])
def test_gated_spatial_conv_equals_the_replaced_forward(kernel_size, with_extra, training,
                                                         channels_last):
    torch.manual_seed(0)
    c_x, c_e = 5, (3 if with_extra else 0)
    gcl = GatedSpatialConv(c_x + c_e, 4, kernel_size).double()
    random_batch_norms(gcl, 1)
    gcl.train(training)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, c_x, 9, 11, generator=g, dtype=D)
    gate = torch.randn(2, 1, 9, 11, generator=g, dtype=D)
    extra = torch.randn(2, max(c_e, 1), 9, 11, generator=g, dtype=D) if c_e else None
    if channels_last:
        x, gate = (t.contiguous(memory_format=torch.channels_last) for t in (x, gate))
    inputs = [t.requires_grad_(True) for t in (x, gate, extra) if t is not None]
    params = list(gcl.parameters())
    before = {k: v.clone() for k, v in gcl.state_dict().items()}

    out = gcl(x, gate, extra)
    new = grads([out], inputs + params)
    stats_new = bn_state(gcl)
    gcl.load_state_dict(before)
    joined = x if extra is None else torch.cat([x, extra], 1)
    expected = ref.gated_spatial_conv(gcl, joined, gate)
    old = grads([expected], inputs + params)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    assert_all_close(new, old)
    assert_all_close(stats_new, bn_state(gcl))  # running statistics updated alike
    if training:
        assert not torch.equal(stats_new[0], before['attention.0.running_mean'])


def test_gated_spatial_conv_keeps_its_parameter_names():
    keys = set(GatedSpatialConv(6, 5, 3).state_dict())
    assert keys == {
        'attention.0.weight', 'attention.0.bias', 'attention.0.running_mean',
        'attention.0.running_var', 'attention.0.num_batches_tracked',
        'attention.1.conv.weight', 'attention.1.conv.bias', 'attention.2.conv.weight',
        'attention.2.bn.weight', 'attention.2.bn.bias', 'attention.2.bn.running_mean',
        'attention.2.bn.running_var', 'attention.2.bn.num_batches_tracked', 'conv.weight'}


def test_gated_spatial_conv_with_sync_bn_equals_plain_bn():
    """SyncBN (single process: per-channel batch statistics) computes what BN does."""
    torch.manual_seed(0)
    bn = GatedSpatialConv(4, 3, norm_cfg=dict(type='BN')).double()
    sync = GatedSpatialConv(4, 3, norm_cfg=dict(type='SyncBN')).double()
    sync.load_state_dict(bn.state_dict())
    x, gate = torch.randn(2, 4, 6, 7, dtype=D), torch.randn(2, 1, 6, 7, dtype=D)
    torch.testing.assert_close(sync(x, gate), bn(x, gate), rtol=1e-10, atol=1e-12)
    assert_all_close(bn_state(sync), bn_state(bn))


# ------------------------------------------------------------ the shape stream
def feats_for(h, w, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [(h // 4, w // 4)] + [(h // 8, w // 8)] * 3
    return [torch.randn(n, c, *s, generator=g, dtype=D) for c, s in zip(TINY_CHANNELS, sizes)]


@pytest.fixture(params=['cpu_paths', 'cuda_paths'])
def code_path(request, monkeypatch):
    """The CUDA paths (channels-last stream, enlargement by transposed
    convolution) run here on the CPU."""
    if request.param == 'cuda_paths':
        monkeypatch.setattr(stream_module, '_channels_last_pays_off', lambda x: True)
        monkeypatch.setattr(upsample, '_blends_pay_off', lambda x: True)
    return request.param == 'cuda_paths'


@pytest.mark.parametrize('cfg', [
    dict(),                                          # defaults: stem, low-res first block
    dict(first_block_low_res=False, stem_channels=0),
    dict(gcl_kernel_size=3, stem_channels=4),
    dict(stride=2),
])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('normalise', [False, True])
def test_shape_stream_equals_the_replaced_forward(cfg, training, normalise, code_path):
    torch.manual_seed(0)
    stream = ShapeStream(TINY_CHANNELS, channels=(8, 6, 4, 4), **cfg)
    stream.init_weights()
    stream = stream.double().train(training)
    random_batch_norms(stream, 3)
    with torch.no_grad():  # the classifier starts near 0: spread its logits
        stream.classifier.weight.normal_(0, 1.0)
    feats = [f.requires_grad_(True) for f in feats_for(32, 48)]
    image = (torch.rand(2, 3, 32, 48, dtype=D) * 255).requires_grad_(True)
    valid = torch.ones(2, 1, 32, 48, dtype=torch.bool)
    valid[1, :, 28:] = False
    inputs = feats + [image] + list(stream.parameters())
    before = {k: v.clone() for k, v in stream.state_dict().items()}

    # the image in pixels, or normalised as the data preprocessor gives it
    outs = (stream(feats, normalised(image), valid, (STD, MEAN)) if normalise
            else stream(feats, image, valid))
    new = grads(outs, inputs)
    stats_new = bn_state(stream)
    stream.load_state_dict(before)
    expected = ref.shape_stream(stream, feats, image, valid, cuda_path=code_path)
    old = grads(expected, inputs)
    for a, b in zip(outs, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert_all_close(new, old)
    assert_all_close(stats_new, bn_state(stream))


def test_shape_stream_state_dict_is_unchanged():
    """No new entry: old checkpoints load strictly."""
    stream = ShapeStream(TINY_CHANNELS, channels=(8, 6, 4, 4))
    keys = set(stream.state_dict())
    assert {'stem.conv.weight', 'stem.bn.weight', 'fuse.weight', 'gates.0.conv.weight',
            'gates.0.attention.0.running_var'} <= keys
    fresh = ShapeStream(TINY_CHANNELS, channels=(8, 6, 4, 4))
    fresh.load_state_dict(stream.state_dict(), strict=True)


def test_gated_spatial_conv_keeps_no_gated_product_for_backward():
    """kernel 1: ``conv(z)`` is recomputed in the backward pass, not kept
    (z is kept anyway, by the attention's norm)."""
    gcl = GatedSpatialConv(5, 4).double().train()
    x = torch.randn(2, 5, 9, 11, dtype=D, requires_grad=True)
    gate = torch.randn(2, 1, 9, 11, dtype=D)
    shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(t.shape) or t,
                                                  lambda t: t):
        out = gcl(x, gate)
    assert (2, 6, 9, 11) in shapes and (2, 4, 9, 11) not in shapes
    # only the parameters need gradients: the same as the replaced forward
    x.requires_grad_(False)
    params = list(gcl.parameters())
    state = {k: v.clone() for k, v in gcl.state_dict().items()}
    new = grads([gcl(x, gate)], params)
    gcl.load_state_dict(state)
    assert_all_close(new, grads([ref.gated_spatial_conv(gcl, x, gate)], params))
    assert out.shape == (2, 4, 9, 11)


@pytest.mark.parametrize('sizes, stride, expected', [
    # the gates first, then the stream's features (6 channels)
    ([(8, 12)] * 3, 1, [3, 6]),                    # one level size: the gates together
    ([(8, 12), (4, 6), (4, 6)], 1, [1, 2, 6]),      # two sizes: two enlargements
    ([(8, 12), (4, 6), (2, 3)], 1, [1, 1, 1, 6]),
    ([(8, 12)] * 3, 4, []),                        # the gates at the output size already
])
@pytest.mark.parametrize('align_corners', [False, True])
def test_gates_of_one_resolution_are_enlarged_together(monkeypatch, sizes, stride, expected,
                                                      code_path, align_corners):
    """One enlargement per gate resolution (its channels: the gates, each
    a contiguous plane per image), the same outputs and gradients as the
    frozen stream (which enlarges every gate on its own), also under
    gradient checkpointing."""
    calls = []
    enlarge = stream_module.upsample_bilinear

    def counting(x, size, align_corners=False):
        calls.append(x.shape[1])
        return enlarge(x, size, align_corners)

    torch.manual_seed(0)
    for with_cp in (False, True):
        stream = ShapeStream(TINY_CHANNELS, channels=(8, 6, 4, 4), stride=stride,
                             with_cp=with_cp, align_corners=align_corners)
        stream.init_weights()
        stream = stream.double().train()
        g = torch.Generator().manual_seed(1)
        feats = [torch.randn(2, c, *s, generator=g, dtype=D, requires_grad=True)
                 for c, s in zip(TINY_CHANNELS, [(8, 12)] + sizes)]
        image = torch.rand(2, 3, 32, 48, dtype=D) * 255
        inputs = feats + list(stream.parameters())
        before = {k: v.clone() for k, v in stream.state_dict().items()}
        calls.clear()
        monkeypatch.setattr(stream_module, 'upsample_bilinear', counting)
        outs = stream(feats, image)
        monkeypatch.setattr(stream_module, 'upsample_bilinear', enlarge)
        assert calls == expected
        new = grads(outs, inputs)
        if expected and expected[0] == 3:
            with torch.no_grad():
                gates = stream._gate_maps(feats, (32, 48))
            assert all(g.shape == (2, 1, 32, 48) and g[1, 0].is_contiguous()
                       and g.stride()[1] == 32 * 48 for g in gates)
        stream.load_state_dict(before)
        expected_outs = ref.shape_stream(stream, feats, image, cuda_path=code_path)
        for a, b in zip(outs, expected_outs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert_all_close(new, grads(expected_outs, inputs))


def test_split_channels_views_and_joined_gradients():
    from mmgscnn.models.shape_stream.shape_stream import split_channels
    x = torch.randn(2, 3, 4, 5, dtype=D, requires_grad=True)
    parts = split_channels(x)
    assert len(parts) == 3 and all(p.shape == (2, 1, 4, 5) for p in parts)
    assert all(p.data_ptr() == x[:, k:k + 1].data_ptr() for k, p in enumerate(parts))
    # the middle channel unused: its gradient is zero
    (parts[0] * 2 + parts[2].square()).sum().backward()
    expected = torch.zeros_like(x)
    expected[:, 0] = 2
    expected[:, 2] = 2 * x[:, 2].detach()
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=0)
    # one kernel joins the gradients: a concatenation, no accumulation
    from mmgscnn.benchmark.traffic import count_traffic
    y = torch.randn(2, 3, 4, 5, requires_grad=True)
    out = count_traffic(lambda: sum(p.sum() for p in split_channels(y)).backward(),
                        (4, 5), training=True)
    assert out['ops_full_res'].get('cat') == 1 and 'add' not in out['ops_full_res']
    with torch.no_grad():
        assert [p.shape[1] for p in split_channels(y)] == [1, 1, 1]
    # the joined gradient is written in the input's layout (channels-last or,
    # for any other, contiguous)
    w = torch.randn(2, 3, 5, 4).transpose(2, 3)
    for z, layout in ((torch.randn(2, 3, 4, 5), torch.contiguous_format),
                      (torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
                       torch.channels_last), (w, torch.contiguous_format)):
        z.requires_grad_(True)
        g, = torch.autograd.grad(sum((p * (k + 1)).sum()
                                     for k, p in enumerate(split_channels(z))), z)
        assert g.is_contiguous(memory_format=layout)
        torch.testing.assert_close(g, torch.arange(1.0, 4.0).view(1, 3, 1, 1).expand_as(z))
