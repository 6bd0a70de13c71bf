"""The training-mode batch norm folded into the 1x1 convolution after it
(``mmgscnn.models.shape_stream.norm_conv``) against torch's own
``nn.BatchNorm2d`` followed by ``nn.Conv2d``, in float64: outputs, every
gradient, running statistics and batch count."""
import copy

import pytest
import torch
import torch.nn as nn

from mmgscnn.models import GatedSpatialConv
from mmgscnn.models.shape_stream import gated_spatial_conv as gcl_module
from mmgscnn.models.shape_stream import gcl_training
from mmgscnn.models.shape_stream.norm_conv import _NormConv1x1, folds_in_training, norm_conv1x1

D = torch.float64


def pair(c=5, o=4, affine=True, bias=True, momentum=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    norm = nn.BatchNorm2d(c, affine=affine, momentum=momentum).to(D)
    conv = nn.Conv2d(c, o, 1, bias=bias).to(D)
    with torch.no_grad():
        for p in list(norm.parameters()) + list(conv.parameters()):
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
        norm.running_mean.copy_(torch.randn(c, generator=g, dtype=D))
        norm.running_var.copy_(torch.rand(c, generator=g, dtype=D) + 0.5)
    return norm, conv


@pytest.mark.parametrize('affine,bias,momentum', [(True, True, 0.1), (False, True, 0.1),
                                                  (True, False, None), (True, True, 0.3)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_equals_batch_norm_then_conv(affine, bias, momentum, channels_last):
    norm, conv = pair(affine=affine, bias=bias, momentum=momentum)
    ref_norm, ref_conv = copy.deepcopy(norm), copy.deepcopy(conv)
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(3, 5, 7, 9, generator=g, dtype=D) * 2 + 1)
    if channels_last:
        z = z.contiguous(memory_format=torch.channels_last)
    weights = torch.randn(3, 4, 7, 9, generator=g, dtype=D)
    for step in range(3):  # another batch each step: the batch count (momentum None)
        zs = [(z + step * z.square()).requires_grad_(True) for _ in range(2)]
        out = norm_conv1x1(norm, conv, zs[0])
        ref = ref_conv(ref_norm(zs[1]))
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        params = [p for p in (norm.weight, norm.bias, conv.weight, conv.bias) if p is not None]
        ref_params = [p for p in (ref_norm.weight, ref_norm.bias, ref_conv.weight,
                                  ref_conv.bias) if p is not None]
        got = torch.autograd.grad((out * weights).sum(), [zs[0]] + params)
        expected = torch.autograd.grad((ref * weights).sum(), [zs[1]] + ref_params)
        assert expected[0].abs().max() > 1e-3
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for name in ('running_mean', 'running_var', 'num_batches_tracked'):
            torch.testing.assert_close(getattr(norm, name), getattr(ref_norm, name),
                                       rtol=1e-12, atol=1e-14)
    assert int(norm.num_batches_tracked) == 3


def test_gradcheck():
    g = torch.Generator().manual_seed(2)
    args = [torch.randn(s, generator=g, dtype=D).requires_grad_(True)
            for s in ((2, 3, 4, 5), (3, ), (3, ), (2, 3, 1, 1), (2, ))]

    def f(z, gamma, beta, weight, bias):
        return _NormConv1x1.apply(z, gamma, beta, weight, bias, 1e-5)[0]

    assert torch.autograd.gradcheck(f, args)
    _, mean, var = _NormConv1x1.apply(*args, 1e-5)  # statistics carry no gradient
    assert not mean.requires_grad and not var.requires_grad


def test_when_it_folds():
    norm, conv = pair()
    z = torch.randn(2, 5, 4, 4, dtype=D)
    assert folds_in_training(norm, conv, z)
    assert not folds_in_training(norm.eval(), conv, z)  # running statistics: fuse_bn's case
    norm.train()
    assert not folds_in_training(nn.SyncBatchNorm(5).to(D), conv, z)  # statistics across ranks
    assert not folds_in_training(norm, nn.Conv2d(5, 4, 3, padding=1).to(D), z)
    assert not folds_in_training(norm, conv, z.half())
    with torch.autocast('cpu', torch.bfloat16):
        assert not folds_in_training(norm, conv, z)
    assert not folds_in_training(norm, conv, z[:1, :, :1, :1])  # one value per channel
    assert folds_in_training(norm, conv, z[:1, :, :1, :2])


def test_which_convolutions_a_norm_folds_into():
    """Only a plain 1x1 nn.Conv2d, stride 1, no padding, one group; and a
    ConvModule only when it starts with such a conv and has no norm and no
    padding layer of its own."""
    from mmcv.cnn import ConvModule

    from mmgscnn.models.shape_stream.norm_conv import conv_after_norm, norm_folds_into
    assert norm_folds_into(nn.Conv2d(5, 4, 1))
    for conv in (nn.Conv2d(5, 4, 3), nn.Conv2d(5, 4, 3, padding=1), nn.Conv2d(5, 4, 1, stride=2),
                 nn.Conv2d(5, 4, 1, padding=1), nn.Conv2d(4, 4, 1, groups=2)):
        assert not norm_folds_into(conv), conv
    plain = ConvModule(5, 4, 1, act_cfg=dict(type='ReLU'))
    assert conv_after_norm(plain) is plain.conv
    assert conv_after_norm(nn.Conv2d(5, 4, 1)) is None  # not a ConvModule
    for module in (ConvModule(5, 4, 1, order=('norm', 'conv', 'act'), norm_cfg=dict(type='BN')),
                   ConvModule(5, 4, 1, norm_cfg=dict(type='BN')),
                   ConvModule(5, 4, 1, padding=0, padding_mode='reflect'),
                   ConvModule(5, 4, 3, padding=1)):
        assert conv_after_norm(module) is None, module


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_gcl_keeps_no_normalised_copy_of_its_input(monkeypatch, kernel_size):
    """The GCL's saved tensors lose exactly the normalised ``cat(x, gate)``
    ((C + 1) channels) when the norm folds, and its output and gradients are
    those of the unfolded attention (1x1: the GCL's training Function; 3x3:
    the folded attention before the modules' gating)."""
    torch.manual_seed(0)
    gcl = GatedSpatialConv(6, 4, kernel_size=kernel_size).to(D).train()
    x = torch.randn(2, 6, 9, 11, dtype=D, requires_grad=True)
    gate = torch.randn(2, 1, 9, 11, dtype=D, requires_grad=True)

    def run(module):
        saved = {}

        def pack(t):  # the maps kept, (..., 9, 11)
            if tuple(t.shape[-2:]) == (9, 11):
                saved[(t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))] = \
                    t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = module(x, gate)
        grads = torch.autograd.grad(out.square().sum(), [x, gate] + list(module.parameters()))
        return out, grads, sum(saved.values())

    plain = copy.deepcopy(gcl)
    out, grads, folded_bytes = run(gcl)
    monkeypatch.setattr(gcl_module, 'folds_in_training', lambda *args: False)
    monkeypatch.setattr(gcl_training, 'folds_in_training', lambda *args: False)
    ref, ref_grads, plain_bytes = run(plain)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert plain_bytes - folded_bytes == 2 * 7 * 9 * 11 * 8
