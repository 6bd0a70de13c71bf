"""Conv + bias (+ add) + ReLU as one operator at inference
(mmgscnn.models.utils.conv_act, mmgscnn.deploy.fuse_conv_act): the op equals
a hand-written reference, the fused model predicts what the folded one does
(float64, float32) and runs the op where expected, grad is refused, and the
traffic proxy counts one convolution kernel per fused op."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.backbones.resnet import BasicBlock
from mmseg.registry import MODELS
from torch.utils._python_dispatch import TorchDispatchMode

from helpers import tiny_model
from mmgscnn.benchmark.inputs import infer_batch
from mmgscnn.benchmark.traffic import count_traffic, cuda_code_paths
from mmgscnn.deploy.fuse_bn import fuse_bn, remaining_norms
from mmgscnn.deploy.fuse_conv_act import (FusedBasicBlock, FusedConvReLUModule,
                                          fuse_conv_act)
from mmgscnn.models.shape_stream.gated_spatial_conv import GatedSpatialConv
from mmgscnn.models.shape_stream.shape_stream import ShapeStream
from mmgscnn.models.utils.conv_act import (conv2d_add_relu, conv2d_relu, fused_path,
                                           probe_cudnn_fusion)
from test_fuse_bn import _randomise_norms


class _CountOps(TorchDispatchMode):
    """Counts the operators the dispatcher runs, by qualified name."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.name()
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _reference(x, weight, bias, z, stride, padding, dilation):
    """float64 conv written out as sums over the kernel taps, + bias + z, ReLU."""
    x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    n, _, h, w = x.shape
    o, c, kh, kw = weight.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = torch.zeros(n, o, ho, wo, dtype=torch.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dilation[0]:i * dilation[0] + stride[0] * (ho - 1) + 1:stride[0],
                      j * dilation[1]:j * dilation[1] + stride[1] * (wo - 1) + 1:stride[1]]
            out += torch.einsum('nchw,oc->nohw', patch, weight[:, :, i, j])
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    if z is not None:
        out += z
    return out.clamp(min=0)


@pytest.mark.parametrize('stride,padding,dilation', [((1, 1), (1, 1), (1, 1)),
                                                     ((2, 1), (2, 1), (2, 1))])
@pytest.mark.parametrize('with_bias', [True, False])
def test_ops_equal_a_hand_written_reference(stride, padding, dilation, with_bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(4, generator=g, dtype=torch.float64) if with_bias else None
    y = conv2d_relu(x, weight, bias, stride, padding, dilation)
    ref = _reference(x, weight, bias, None, stride, padding, dilation)
    assert y.shape == ref.shape and (ref == 0).any() and (ref > 0).any()
    assert torch.allclose(y, ref, atol=1e-12)
    z = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    y = conv2d_add_relu(x, weight, bias, z, stride, padding, dilation)
    assert torch.allclose(y, _reference(x, weight, bias, z, stride, padding, dilation),
                          atol=1e-12)
    # CPU inputs take the portable path, bit for bit today's conv, add_, relu_
    assert fused_path(x, weight) == 'portable'
    assert torch.equal(y, F.conv2d(x, weight, bias, stride, padding, dilation).add_(z).relu_())


def test_add_refuses_a_residual_of_another_shape():
    x, weight = torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r'output shape \(1, 4, 8, 8\)'):
        conv2d_add_relu(x, weight, None, torch.randn(1, 4, 6, 6), padding=1)


def test_grad_is_refused_with_the_fix_named():
    x = torch.randn(1, 3, 8, 8)
    weight = torch.randn(4, 3, 3, 3, requires_grad=True)
    z = torch.randn(1, 4, 8, 8)
    for call in (lambda: conv2d_relu(x, weight, None, padding=1),
                 lambda: conv2d_add_relu(x, weight, None, z, padding=1),
                 lambda: torch.ops.mmgscnn.conv2d_relu(x, weight, None, [1, 1], [1, 1],
                                                       [1, 1], 1)):
        with pytest.raises(RuntimeError, match='inference-only.*fuse_bn.*no_grad'):
            call()
    with torch.no_grad():
        assert not conv2d_relu(x, weight, None, padding=1).requires_grad


def test_autocast_casts_like_conv2d():
    g = torch.Generator().manual_seed(1)
    x, weight = torch.randn(1, 3, 8, 8, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    bias, z = torch.randn(4, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = conv2d_add_relu(x, weight, bias, z, padding=1)
        ref = F.conv2d(x, weight, bias, padding=1)
        y64 = conv2d_relu(x.double(), weight.double(), bias.double(), padding=1)
    assert y.dtype == ref.dtype == torch.bfloat16 and y64.dtype == torch.float64
    expected = (ref.float() + z.bfloat16().float()).relu()
    assert torch.allclose(y.float(), expected, atol=0.1, rtol=0.02)


def test_compiled_call_equals_eager():
    g = torch.Generator().manual_seed(2)
    x, weight = torch.randn(2, 3, 8, 8, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    bias, z = torch.randn(4, generator=g), torch.randn(2, 4, 8, 8, generator=g)

    weight2 = torch.randn(4, 4, 1, 1, generator=g)

    def fn(x):
        return conv2d_add_relu(conv2d_relu(x, weight, bias, padding=1), weight2, None, z) * 2

    eager = fn(x)
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend='aot_eager')(x)
    assert torch.equal(compiled, eager)


def _predictions(model, dtype, seed=1):
    """(seg logits, boundary map) of two random 48 x 64 images."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 48, 64, generator=g, dtype=torch.float64).to(dtype)
    metas = [dict(img_shape=(48, 64), ori_shape=(48, 64), pad_shape=(48, 64))] * 2
    with torch.no_grad():
        return list(model.encode_decode_with_boundary(x, metas))


def _build(dtype):
    model = MODELS.build(tiny_model('sepaspp'))
    model = model.to(dtype).eval()
    _randomise_norms(model)
    return model


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_fused_model_predicts_the_same_and_runs_the_ops(dtype):
    model = _build(dtype)
    folded = fuse_bn(copy.deepcopy(model), conv_act=False)
    fused = fuse_bn(copy.deepcopy(model))
    assert remaining_norms(fused) == []
    # the export path keeps plain modules; the inference path swaps them
    assert not any(isinstance(m, (FusedConvReLUModule, FusedBasicBlock))
                   for m in folded.modules())
    stream = next(m for m in fused.modules() if isinstance(m, ShapeStream))
    assert type(stream.stem) is ConvModule  # the stream's stem is its own business
    gcls = [m for m in fused.modules() if isinstance(m, GatedSpatialConv)]
    assert len(gcls) == 3
    for gcl in gcls:
        assert type(gcl.attention[1]) is FusedConvReLUModule
        assert type(gcl.attention[2]) is ConvModule  # no activation: left as is
    blocks = [m for m in fused.modules() if isinstance(m, BasicBlock)]
    n_fused_blocks = sum(type(b) is FusedBasicBlock for b in blocks)
    assert n_fused_blocks == len(blocks) >= 8 + len(stream.blocks)  # ResNet-18 + the stream
    assert any(b.downsample is not None for b in blocks)
    n_conv_relu = sum(type(m) is FusedConvReLUModule for m in fused.modules())
    # parameters and buffers unchanged, names included
    ref_state, state = folded.state_dict(), fused.state_dict()
    assert list(state) == list(ref_state)
    assert all(torch.equal(state[k], ref_state[k]) for k in state)

    ref = _predictions(folded, dtype)
    with _CountOps() as ops:
        out = _predictions(fused, dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(out, ref):
        assert a.dtype == dtype and a.shape == b.shape
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())
    # one op per call of a fused module: the stream's blocks and GCLs run once;
    # plus the stem, which the stream runs as one conv2d_relu itself
    assert ops.counts['mmgscnn::conv2d_add_relu'] == n_fused_blocks
    assert ops.counts['mmgscnn::conv2d_relu'] == n_fused_blocks + n_conv_relu + 1
    assert 'aten::relu_' in ops.counts  # depthwise convs keep theirs
    assert ops.counts['aten::relu_'] < _count_relus(folded, dtype)


def _count_relus(model, dtype):
    with _CountOps() as ops:
        _predictions(model, dtype)
    return ops.counts['aten::relu_']


def test_fused_model_refuses_grad():
    fused = fuse_bn(_build(torch.float32))
    x = torch.randn(1, 3, 32, 32)
    metas = [dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32))]
    with pytest.raises(RuntimeError, match='inference-only'):
        fused.encode_decode_with_boundary(x, metas)


def test_fuse_conv_act_leaves_unfolded_and_grouped_modules():
    block = BasicBlock(4, 4).eval()  # norms not folded
    grouped = ConvModule(4, 4, 3, padding=1, groups=4, norm_cfg=None)
    reflect = ConvModule(4, 4, 3, padding=1, padding_mode='reflect', norm_cfg=None)
    with_bn = ConvModule(4, 4, 3, padding=1, norm_cfg=dict(type='BN'))
    plain = ConvModule(4, 4, 3, padding=1, norm_cfg=None)
    model = nn.Sequential(block, grouped, reflect, with_bn, plain)
    done = fuse_conv_act(model)
    assert done == dict(conv_relu=['4'], basic_block=[])
    assert [type(m) for m in model] == [BasicBlock, ConvModule, ConvModule, ConvModule,
                                        FusedConvReLUModule]
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():  # activate=False still skips the ReLU
        assert torch.equal(plain(x, activate=False), plain.conv(x))
        assert torch.equal(plain(x), plain.conv(x).relu())


def test_traffic_proxy_counts_one_kernel_per_fused_op():
    """The inference count drops by exactly the fused ReLUs and adds that ran
    at full resolution (found by hooks on the fused modules)."""
    size = (32, 48)
    model = _build(torch.float32)
    folded = fuse_bn(copy.deepcopy(model), conv_act=False)
    fused = fuse_bn(copy.deepcopy(model))
    expected = []

    def hook(module, args, out):
        if out.shape[-2:] == size:  # 1 ReLU, or ReLU + add + ReLU
            expected.append(3 if isinstance(module, FusedBasicBlock) else 1)

    for m in fused.modules():
        if isinstance(m, (FusedBasicBlock, FusedConvReLUModule)):
            m.register_forward_hook(hook)
    counts = {}
    with cuda_code_paths(), torch.no_grad():
        for name, net in (('folded', folded), ('fused', fused)):
            counts[name] = count_traffic(lambda: net.test_step(infer_batch(size)), size, False)
    assert len(expected) >= 4  # three GCL attentions and a stream block at least
    assert counts['folded']['passes_full_res'] - counts['fused']['passes_full_res'] \
        == sum(expected)
    assert counts['fused']['conv_ops_full_res'] == counts['folded']['conv_ops_full_res']


def test_cuda_path_choices_with_a_stand_in_kernel(monkeypatch):
    """The probe's verdicts and the CUDA kernel's choice, on the CPU: cuDNN's
    fused kernel replaced by a stand-in that is right, wrong or refuses."""
    from mmgscnn.models.utils import conv_act
    calls = []

    def right(*args):
        calls.append(args[3] is None)
        return conv_act._portable(*args)

    def wrong(*args):
        return conv_act._portable(*args) + 1

    def refuses(*args):
        raise RuntimeError('CUDNN_STATUS_NOT_SUPPORTED\ndetails')

    cpu = torch.device('cpu')
    for op in ('conv2d_relu', 'conv2d_add_relu'):
        for stand_in, verdict in ((right, None), (wrong, 'differs from the portable path'),
                                  (refuses, 'does not run: CUDNN_STATUS_NOT_SUPPORTED')):
            monkeypatch.setattr(conv_act, '_cudnn_op', stand_in)
            why = conv_act._probe_one(op, cpu, torch.float32, True)
            assert why == verdict if verdict is None else why.startswith(verdict)
    # six cases (3x3, dilated, 1x1; with and without bias), z for the add
    assert calls == [True] * 6 + [False] * 6

    g = torch.Generator().manual_seed(3)
    x, weight = torch.randn(1, 4, 6, 6, generator=g), torch.randn(4, 4, 3, 3, generator=g)
    bias, conv = torch.randn(4, generator=g), ([1, 1], [1, 1], [1, 1], 1)
    ref = F.conv2d(x, weight, bias, *conv).relu()
    monkeypatch.setattr(conv_act, '_CUDNN_OK', {('conv2d_relu', cpu, torch.float32, False): True})
    monkeypatch.setattr(conv_act, '_FAILED_AT_RUN', set())
    monkeypatch.setattr(conv_act, '_cudnn_op', right)
    calls.clear()
    assert torch.equal(conv_act._cuda('conv2d_relu', x, weight, bias, None, *conv), ref)
    assert calls == [True]  # the probed case takes the fused kernel
    conv_act._cuda('conv2d_relu', x.double(), weight.double(), bias.double(), None, *conv)
    conv_act._cuda('conv2d_relu', x.contiguous(memory_format=torch.channels_last), weight,
                   bias, None, *conv)
    conv_act._cuda('conv2d_add_relu', x, weight, bias, ref, *conv)
    with torch.backends.cudnn.flags(enabled=False):
        conv_act._cuda('conv2d_relu', x, weight, bias, None, *conv)
    assert calls == [True]  # unprobed dtype, layout or op, or cuDNN off: portable
    monkeypatch.setattr(conv_act, '_cudnn_op', refuses)
    for _ in range(2):  # a kernel that fails at run time: the portable result, noted once
        assert torch.equal(conv_act._cuda('conv2d_relu', x, weight, bias, None, *conv), ref)
    assert len(conv_act._FAILED_AT_RUN) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (cuDNN fused kernels)')
@pytest.mark.parametrize('channels_last', [False, True])
def test_cuda_fused_model_predicts_the_same(channels_last):
    device = torch.device('cuda')
    model = _build(torch.float32).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    folded = fuse_bn(copy.deepcopy(model), conv_act=False)
    fused = fuse_bn(copy.deepcopy(model))
    probe = probe_cudnn_fusion(device)
    print('cuDNN fusion probe:', probe)  # None: the fused kernel serves that case
    assert len(probe) == 12
    w = fused.backbone.layer1[0].conv1.weight
    x1 = torch.randn(1, w.shape[1], 8, 8, device=device).contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    expected = 'cudnn' if probe[('conv2d_relu', torch.float32, channels_last)] is None \
        else 'portable'
    assert fused_path(x1, w) == expected
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 48, 64, generator=g).to(device)
    metas = [dict(img_shape=(48, 64), ori_shape=(48, 64), pad_shape=(48, 64))] * 2
    for autocast in (False, True):
        with torch.no_grad(), torch.autocast('cuda', torch.float16, enabled=autocast):
            ref = folded.encode_decode_with_boundary(x, metas)
            out = fused.encode_decode_with_boundary(x, metas)
        for a, b in zip(out, ref):
            assert a.dtype == b.dtype and a.shape == b.shape
            tol = 2e-2 if autocast else 1e-3  # TF32 / fp16 in another order
            assert (a.float() - b.float()).abs().max() <= tol * max(1.0, b.abs().max().item())
