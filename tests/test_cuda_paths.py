"""The model's CUDA code paths on a real CUDA device against the CPU.

CI has no GPU: these tests are skipped there and run on a lent GPU machine
(``tools/gpu_check.sh`` runs them before the benchmark). Elsewhere the CUDA
paths are only run on the CPU with their predicates patched (the traffic
proxy, ``tests/test_stream_rewrites_equivalence.py``); here cuDNN, its
channels-last layouts and the transposed-convolution enlargement run for
real. ``MMGSCNN_CUDA_STANDIN=cpu`` runs them on the CPU instead (CPU against
CPU), which checks the tests themselves where no GPU is lent.
"""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS

from helpers import make_batch, tiny_model

STANDIN = os.environ.get('MMGSCNN_CUDA_STANDIN') == 'cpu'
pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() or STANDIN),
                                reason='needs a CUDA device')


@pytest.fixture
def device():
    if STANDIN:
        yield torch.device('cpu')
        return
    torch.backends.cudnn.allow_tf32 = False  # compare fp32 with fp32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield torch.device('cuda')
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True


def _to(data, device):
    return dict(inputs=data['inputs'].to(device),
                data_samples=[s.to(device) for s in data['data_samples']])


def _gscnn(**head_kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model('sepaspp', head_kwargs=head_kwargs))
    model.init_weights()
    return model


def test_training_step_on_the_device_matches_the_cpu(device):
    """Losses and every parameter's gradient of one GSCNN step (boundary BCE,
    attention; no dual-task loss and no dropout, whose random draws the
    devices make differently) agree with the CPU's."""
    cpu = _gscnn(loss_dual_task=None).train()
    for m in cpu.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.p = 0.0
    dev = copy.deepcopy(cpu).to(device)
    data = make_batch(cpu, 64, 96)
    results = []
    for model, batch in ((cpu, data), (dev, _to(data, device))):
        losses = model(**batch, mode='loss')
        total = sum(v for k, v in losses.items() if k.startswith('decode.loss'))
        total.backward()
        results.append((losses, {n: p.grad.detach().cpu() for n, p in model.named_parameters()
                                 if p.grad is not None}))
    (l_cpu, g_cpu), (l_dev, g_dev) = results
    assert l_cpu.keys() == l_dev.keys() and 'decode.loss_boundary' in l_cpu
    for key in l_cpu:
        torch.testing.assert_close(l_dev[key].cpu(), l_cpu[key], rtol=1e-4, atol=1e-5)
    assert g_cpu.keys() == g_dev.keys() and any('shape_stream' in n for n in g_cpu)
    for name in g_cpu:
        torch.testing.assert_close(g_dev[name], g_cpu[name], rtol=1e-3, atol=1e-5,
                                   msg=lambda m: f'{name}: {m}')


def test_amp_training_step_is_finite_and_close_to_fp32(device):
    if device.type != 'cuda':
        pytest.skip('fp16 autocast is a CUDA path')
    model = _gscnn().to(device).train()
    batch = _to(make_batch(model, 64, 96), device)
    torch.manual_seed(1)
    fp32 = model(**batch, mode='loss')
    torch.manual_seed(1)
    with torch.autocast('cuda', torch.float16):
        half = model(**batch, mode='loss')
    total = sum(v for k, v in half.items() if k.startswith('decode.loss'))
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    for key in ('decode.loss_ce', 'decode.loss_boundary', 'decode.loss_attention',
                'decode.loss_dual_task'):
        torch.testing.assert_close(half[key].float(), fp32[key], rtol=5e-2, atol=5e-3)


def test_fused_inference_on_the_device_matches_the_cpu(device):
    from mmgscnn.deploy.fuse_bn import fuse_bn
    model = _gscnn().eval()
    fused = fuse_bn(copy.deepcopy(model).to(device))
    data = make_batch(model, 64, 96, training=False)
    metas = [s.metainfo for s in data['data_samples']]
    with torch.no_grad():
        expected = model.encode_decode_with_boundary(data['inputs'], metas)
        got = fused.encode_decode_with_boundary(data['inputs'].to(device), metas)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize('affine', [False, True])
def test_stream_image_buffer_on_the_device(device, affine):
    """pixels_and_sobel: channels-last when asked (cuDNN follows the weight's
    layout, so the stem reads it without a copy) and equal to the CPU's."""
    from mmgscnn.models.shape_stream import pixels_and_sobel
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 40, 56, generator=g)
    args = (torch.tensor([58.4, 57.1, 57.4]), torch.tensor([123.7, 116.3, 103.5])) if affine \
        else (None, None)
    expected = pixels_and_sobel(x, *args)
    got = pixels_and_sobel(x.to(device), *(a if a is None else a.to(device) for a in args),
                           channels_last=True)
    if device.type == 'cuda':
        assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('factors', [(2, 2), (4, 4), (8, 8), (2, 4)])
def test_enlargement_on_the_device_equals_interpolate(device, factors):
    """The integer enlargement (one transposed convolution on CUDA) and its
    gradient against F.interpolate on the CPU."""
    from mmgscnn.models.utils import upsample_bilinear
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 6, 7, generator=g)
    size = (6 * factors[0], 7 * factors[1])
    w = torch.randn(2, 5, *size, generator=g)
    xc = x.clone().requires_grad_(True)
    expected = F.interpolate(xc, size=size, mode='bilinear', align_corners=False)
    (expected * w).sum().backward()
    xd = x.to(device).requires_grad_(True)
    got = upsample_bilinear(xd.contiguous(memory_format=torch.channels_last), size)
    (got * w.to(device)).sum().backward()
    torch.testing.assert_close(got.detach().cpu(), expected.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xd.grad.cpu(), xc.grad, rtol=1e-5, atol=1e-5)
