"""The 1x1 GCL's training step as one autograd Function
(``mmgscnn.models.shape_stream.gcl_training``) against the same layer run
as its modules (torch's BatchNorm2d, mmcv's ConvModules, the folded input
norm of ``norm_conv``), in float64: output, every gradient, both norms'
running statistics and batch counts, over several steps; and one
full-resolution pass fewer."""
import copy

import pytest
import torch

from mmgscnn.benchmark.traffic import count_traffic
from mmgscnn.models import GatedSpatialConv
from mmgscnn.models.shape_stream import gcl_training
from mmgscnn.models.shape_stream.gcl_training import _GatedConv1x1

D = torch.float64


def _gcl(c_in, out, momentum, affine, seed):
    torch.manual_seed(seed)
    norm_cfg = dict(type='BN', momentum=momentum, affine=affine)
    gcl = GatedSpatialConv(c_in, out, norm_cfg=norm_cfg).to(D).train()
    with torch.no_grad():
        for name, t in gcl.state_dict().items():
            if name.endswith('running_var'):
                t.uniform_(0.5, 2.0)
            elif t.is_floating_point():
                t.normal_(0, 0.7)
    return gcl


def _step(gcl, x, gate, extra, weights):
    ins = [t.clone().requires_grad_(True) for t in (x, gate, extra) if t is not None]
    out = gcl(ins[0], ins[1], ins[2] if extra is not None else None)
    params = [p for p in gcl.parameters() if p.requires_grad]
    grads = torch.autograd.grad((out * weights).sum(), ins + params)
    return out.detach(), grads


@pytest.mark.parametrize('momentum,affine,c_extra,channels_last', [
    (0.1, True, 0, False), (None, True, 2, False), (0.3, False, 0, True), (0.1, True, 3, True)])
def test_equals_the_modules(monkeypatch, momentum, affine, c_extra, channels_last):
    c_x, out_channels = 4, 5
    fused = _gcl(c_x + c_extra, out_channels, momentum, affine, seed=1)
    plain = copy.deepcopy(fused)
    g = torch.Generator().manual_seed(2)
    calls = []
    original = _GatedConv1x1.apply
    monkeypatch.setattr(_GatedConv1x1, 'apply',
                        staticmethod(lambda *a: calls.append(1) or original(*a)))
    for step in range(3):
        x = torch.randn(2, c_x, 7, 9, generator=g, dtype=D) * 2 + step
        gate = torch.randn(2, 1, 7, 9, generator=g, dtype=D) * 2
        extra = torch.randn(2, c_extra, 7, 9, generator=g, dtype=D) if c_extra else None
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        weights = torch.randn(2, out_channels, 7, 9, generator=g, dtype=D)
        got = _step(fused, x, gate, extra, weights)
        with monkeypatch.context() as m:
            m.setattr(gcl_training, 'gated_conv1x1_training', lambda *args: None)
            m.setattr('mmgscnn.models.shape_stream.gated_spatial_conv.gated_conv1x1_training',
                      lambda *args: None)
            expected = _step(plain, x, gate, extra, weights)
        torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
        assert expected[1][1].abs().max() > 1e-3  # the gate matters
        for a, b in zip(got[1], expected[1]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for (name, a), b in zip(fused.named_buffers(), plain.buffers()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=name)
    assert len(calls) == 3
    assert int(fused.attention[2].norm.num_batches_tracked) == 3


def test_gradcheck():
    g = torch.Generator().manual_seed(3)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=D).requires_grad_(True)

    z = r(2, 3, 4, 5)
    args = [z, r(3), r(3), r(3, 3, 1, 1), r(3), r(1, 3, 1, 1), r(1), r(1)]

    def f(z, g1, b1, w1, bias1, w2, g2, b2, w):
        return _GatedConv1x1.apply(z, g1, b1, w1, bias1, w2, g2, b2, None, None, 0.0,
                                   1e-5, 1e-5, w)[0]

    assert torch.autograd.gradcheck(f, args + [r(4, 3, 1, 1)])
    _, mean, var = _GatedConv1x1.apply(*args, None, None, 0.0, 1e-5, 1e-5, r(4, 3, 1, 1))
    assert not mean.requires_grad and not var.requires_grad  # statistics carry no gradient


def test_a_frozen_norm_bias_gets_no_gradient_the_scale_does(monkeypatch):
    gcl = _gcl(4, 3, 0.1, True, seed=7)
    gcl.attention[2].norm.bias.requires_grad_(False)
    plain = copy.deepcopy(gcl)
    g = torch.Generator().manual_seed(7)
    x, gate = (torch.randn(2, c, 6, 5, generator=g, dtype=D) for c in (4, 1))
    weights = torch.randn(2, 3, 6, 5, generator=g, dtype=D)
    got = _step(gcl, x, gate, None, weights)
    monkeypatch.setattr('mmgscnn.models.shape_stream.gated_spatial_conv.gated_conv1x1_training',
                        lambda *args: None)
    expected = _step(plain, x, gate, None, weights)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert len(got[1]) == 2 + 7 and expected[1][2 + 5].abs().max() > 0  # attention.2.bn.weight


def test_applies_only_where_exact():
    """Eval mode, no grad, SyncBN, autocast and a 3x3 conv run the modules."""
    gcl = _gcl(4, 3, 0.1, True, seed=0)
    z = torch.randn(2, 5, 6, 6, dtype=D)
    weight = torch.nn.functional.pad(gcl.conv.weight, (0, 0, 0, 0, 0, 1))
    assert gcl_training.gated_conv1x1_training(gcl.attention, weight, z) is not None
    with torch.no_grad():
        assert gcl_training.gated_conv1x1_training(gcl.attention, weight, z) is None
    assert gcl_training.gated_conv1x1_training(gcl.eval().attention, weight, z) is None
    gcl.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert gcl_training.gated_conv1x1_training(gcl.attention, weight, z.float()) is None
    leaky = GatedSpatialConv(4, 3, act_cfg=dict(type='LeakyReLU')).to(D).train()
    assert gcl_training.gated_conv1x1_training(leaky.attention, weight, z) is None
    no_bias = _gcl(4, 3, 0.1, True, seed=0)
    no_bias.attention[1].conv.bias = None
    assert gcl_training.gated_conv1x1_training(no_bias.attention, weight, z) is None
    sync = _gcl(4, 3, 0.1, True, seed=0)
    second = sync.attention[2]
    setattr(second, second.norm_name, torch.nn.SyncBatchNorm(1).to(D))
    assert type(second.norm) is torch.nn.SyncBatchNorm
    assert gcl_training.gated_conv1x1_training(sync.attention, weight, z) is None


def test_one_full_resolution_pass_fewer(monkeypatch):
    gcl = _gcl(6, 4, 0.1, True, seed=4).float()
    x = torch.randn(2, 6, 16, 24, requires_grad=True)
    gate = torch.randn(2, 1, 16, 24, requires_grad=True)

    def step():  # (no gradient accumulated into x and gate between runs)
        torch.autograd.grad(gcl(x, gate).square().sum(), [x, gate] + list(gcl.parameters()))

    fused = count_traffic(step, (16, 24), training=True)['passes_full_res']
    monkeypatch.setattr('mmgscnn.models.shape_stream.gated_spatial_conv.gated_conv1x1_training',
                        lambda *args: None)
    plain = count_traffic(step, (16, 24), training=True)['passes_full_res']
    assert plain - fused == 1


def test_traced_by_dynamo_whole_and_equal():
    """Under torch.compile (Dynamo and AOT autograd; the backward's
    buffer becomes a concatenation): one graph, no break, and the same
    output and gradients as eager."""
    import torch._dynamo
    gcl = _gcl(5, 3, 0.1, True, seed=6)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 5, 6, 7, generator=g, dtype=D)
    gate = torch.randn(2, 1, 6, 7, generator=g, dtype=D)
    weights = torch.randn(2, 3, 6, 7, generator=g, dtype=D)
    eager = copy.deepcopy(gcl)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(copy.deepcopy(gcl))(x, gate)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    compiled = torch.compile(gcl, backend='aot_eager')
    got = _step(compiled, x, gate, None, weights)
    expected = _step(eager, x, gate, None, weights)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch._dynamo.reset()
