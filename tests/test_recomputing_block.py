"""RecomputingBasicBlock against mmseg's BasicBlock on the same weights, in
float64: outputs, every gradient, BN running statistics; and the maps it
keeps for the backward pass."""
import copy

import pytest
import torch
import torch.nn as nn

from mmseg.models.backbones.resnet import BasicBlock
from mmgscnn.models.shape_stream.recomputing_block import RecomputingBasicBlock, _ConvBatchNorm

D = torch.float64


def blocks(c=6, seed=0, **kwargs):
    torch.manual_seed(seed)
    ours = RecomputingBasicBlock(c, c, **kwargs).to(D)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in ours.state_dict().items():
            if t.dtype == D:
                t.copy_(torch.randn(t.shape, generator=g, dtype=D).abs() + 0.5
                        if 'running_var' in name else torch.randn(t.shape, generator=g, dtype=D))
    plain = BasicBlock(c, c, **kwargs).to(D)
    plain.load_state_dict(ours.state_dict())
    return ours, plain


def saved_maps(fn, size):
    keys = set()

    def pack(t):
        if tuple(t.shape[-2:]) == size:
            keys.add((t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, len(keys)


@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('channels_last', [False, True])
def test_equals_basic_block_and_keeps_two_maps_fewer(momentum, channels_last):
    ours, plain = blocks()
    for m in (ours.norm1, ours.norm2, plain.norm1, plain.norm2):
        m.momentum = momentum
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=D)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(2, 6, 9, 11, generator=g, dtype=D)
    for step in range(3):  # another batch each step: the running statistics move
        xs = [(x + step * x.square()).requires_grad_(True) for _ in range(2)]
        out, kept = saved_maps(lambda: ours(xs[0]), (9, 11))
        ref, ref_kept = saved_maps(lambda: plain(xs[1]), (9, 11))
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        got = torch.autograd.grad((out * w).sum(), [xs[0]] + list(ours.parameters()))
        exp = torch.autograd.grad((ref * w).sum(), [xs[1]] + list(plain.parameters()))
        for a, b in zip(got, exp):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for (k, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=k)
        # input, first ReLU's output, output (mmseg's block: and both conv outputs)
        assert (kept, ref_kept) == (3, 5)


def test_falls_back_where_it_would_not_be_exact():
    ours, plain = blocks()
    x = torch.randn(2, 6, 5, 5, dtype=D)
    assert ours._recomputes(x)
    assert not ours._recomputes(x.float().half())
    ours.eval()
    assert not ours._recomputes(x)  # inference: BasicBlock.forward (running statistics)
    torch.testing.assert_close(ours(x), plain.eval()(x))
    ours.train()
    with torch.no_grad():
        assert not ours._recomputes(x)
    setattr(ours, ours.norm1_name, nn.SyncBatchNorm(6).to(D))
    assert not ours._recomputes(x)


def test_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 5, 4, generator=g, dtype=D, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=D, requires_grad=True)
    gamma = torch.randn(4, generator=g, dtype=D, requires_grad=True)
    beta = torch.randn(4, generator=g, dtype=D, requires_grad=True)

    def f(x, weight, gamma, beta):
        return _ConvBatchNorm.apply(x, weight, gamma, beta, None, None, 0.0, 1e-5,
                                    (1, 1), (1, 1), (1, 1))

    assert torch.autograd.gradcheck(f, (x, weight, gamma, beta))


def test_state_dict_is_basic_blocks():
    ours, plain = blocks()
    assert list(ours.state_dict()) == list(plain.state_dict())
    copy.deepcopy(plain).load_state_dict(ours.state_dict(), strict=True)


def test_conv_batch_norm_with_stride_padding_dilation_and_partial_grads():
    """_ConvBatchNorm with every convolution argument different from 1 and
    gradients asked for some inputs only, against F.conv2d + F.batch_norm."""
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(2, 3, 11, 13, generator=g, dtype=D)
    w0 = torch.randn(4, 3, 3, 3, generator=g, dtype=D)
    gamma0, beta0 = torch.randn(4, generator=g, dtype=D), torch.randn(4, generator=g, dtype=D)
    conv = dict(stride=(2, 1), padding=(2, 1), dilation=(2, 1))
    for needs in [(True, True, True, True), (True, False, False, True),
                  (True, True, False, True), (False, True, True, False)]:
        a = [t.clone().requires_grad_(n) for t, n in zip((x0, w0, gamma0, beta0), needs)]
        b = [t.clone().requires_grad_(n) for t, n in zip((x0, w0, gamma0, beta0), needs)]
        rm, rv = torch.zeros(4, dtype=D), torch.ones(4, dtype=D)
        rm2, rv2 = rm.clone(), rv.clone()
        out = _ConvBatchNorm.apply(*a, rm, rv, 0.2, 1e-5, conv['stride'], conv['padding'],
                                   conv['dilation'])
        ref = F.batch_norm(F.conv2d(b[0], b[1], None, **conv), rm2, rv2, b[2], b[3],
                           True, 0.2, 1e-5)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close((rm, rv), (rm2, rv2), rtol=1e-12, atol=1e-14)
        wanted = [i for i, n in enumerate(needs) if n]
        got = torch.autograd.grad(out.square().sum(), [a[i] for i in wanted])
        exp = torch.autograd.grad(ref.square().sum(), [b[i] for i in wanted])
        for i, p, q in zip(wanted, got, exp):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=f'input {i}')


@pytest.mark.parametrize('momentum', [0.1, None])
def test_norms_without_running_statistics(momentum):
    ours, _ = blocks()
    plain = BasicBlock(6, 6, norm_cfg=dict(type='BN', track_running_stats=False)).to(D)
    ours = RecomputingBasicBlock(6, 6, norm_cfg=dict(type='BN', track_running_stats=False)
                                 ).to(D)
    ours.load_state_dict(plain.state_dict())
    for m in (ours.norm1, ours.norm2):
        m.momentum = momentum
    x = torch.randn(2, 6, 7, 5, dtype=D)
    assert ours._recomputes(x)
    torch.testing.assert_close(ours(x), plain(x), rtol=1e-12, atol=1e-12)
