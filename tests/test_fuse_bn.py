"""BN folded into convolutions for inference (mmgscnn.deploy.fuse_bn): the
folded model predicts the same logits and boundary map as the unfused one
(float64), and no batch norm is left."""
import copy

import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmgscnn.deploy.fuse_bn import (fold_norm_into_next_conv, fuse_bn, fuse_gcl_input_norm,
                                    remaining_norms)
from mmgscnn.models.shape_stream.gated_spatial_conv import GatedSpatialConv

from helpers import tiny_model


def _randomise_norms(model, seed=0):
    """Running statistics and affine parameters far from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g, dtype=torch.float64))
                m.running_var.copy_(0.2 + 2 * torch.rand(c, generator=g, dtype=torch.float64))
                m.weight.copy_(0.5 + torch.rand(c, generator=g, dtype=torch.float64))
                m.bias.copy_(torch.randn(c, generator=g, dtype=torch.float64))
    # the boundary classifier starts near zero: give the boundary map some range
    for name in ('classifier', 'fuse'):
        for m in model.modules():
            conv = getattr(m, name, None)
            if isinstance(conv, nn.Conv2d) and conv.out_channels == 1:
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g,
                                                  dtype=torch.float64))


def _predictions(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 48, 64, generator=g, dtype=torch.float64)
    metas = [dict(img_shape=(48, 64), ori_shape=(48, 64), pad_shape=(48, 64))] * 2
    with torch.no_grad():
        return list(model.encode_decode_with_boundary(x, metas))


def _build(decoder, norm_type='BN'):
    cfg = tiny_model(decoder)
    norm = dict(type=norm_type, requires_grad=True)
    cfg.backbone.norm_cfg = norm
    cfg.decode_head.norm_cfg = norm
    cfg.shape_head.shape_stream.norm_cfg = norm
    model = MODELS.build(cfg)
    if norm_type == 'SyncBN':  # as tools/test.py does on a single process
        model = revert_sync_batchnorm(model)
    model = model.double().eval()
    _randomise_norms(model)
    return model


@pytest.mark.parametrize('norm_type', ['BN', 'SyncBN'])
@pytest.mark.parametrize('decoder', ['sepaspp', 'psp'])
def test_fused_model_predicts_the_same(decoder, norm_type):
    model = _build(decoder, norm_type)
    n_norms = len(remaining_norms(model))
    ref = _predictions(model)
    assert len(ref) == 2 and ref[1].shape[1] == 1  # logits and boundary map
    fused = fuse_bn(copy.deepcopy(model))
    assert remaining_norms(fused) == []  # every norm folded, the GCLs' included
    assert n_norms > 20
    out = _predictions(fused)
    for a, b in zip(out, ref):
        assert a.shape == b.shape
        assert (a - b).abs().max() < 1e-5 * max(1.0, b.abs().max().item())
    # the GCL input norms were folded by hand, not dropped
    gcls = [m for m in fused.modules() if isinstance(m, GatedSpatialConv)]
    assert len(gcls) == 3
    for gcl in gcls:
        assert isinstance(gcl.attention[0], nn.Identity)
        assert gcl.attention[1].conv.bias is not None


def test_gcl_fold_equals_norm_then_conv_float64():
    gcl = GatedSpatialConv(5, 4).double().eval()
    _randomise_norms(gcl, seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, 7, 9, generator=g, dtype=torch.float64)
    gate = torch.randn(2, 1, 7, 9, generator=g, dtype=torch.float64)
    z = torch.cat([x, gate], 1)
    with torch.no_grad():
        norm, conv = gcl.attention[0], gcl.attention[1].conv
        # reference: BN in eval written out, then the 1x1 conv
        zn = (z - norm.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
            norm.running_var.view(1, -1, 1, 1) + norm.eps) * norm.weight.view(1, -1, 1, 1) \
            + norm.bias.view(1, -1, 1, 1)
        expected = torch.einsum('oc,nchw->nohw', conv.weight.flatten(1), zn) \
            + conv.bias.view(1, -1, 1, 1)
        ref = gcl(x, gate)
        assert fuse_gcl_input_norm(gcl)
        assert torch.allclose(gcl.attention[1].conv(z), expected, atol=1e-12)
        assert torch.allclose(gcl(x, gate), ref, atol=1e-12)


def test_norm_folds_only_into_an_exact_conv():
    norm = nn.BatchNorm2d(3).eval()
    with pytest.raises(ValueError, match='1x1'):
        fold_norm_into_next_conv(norm, nn.Conv2d(3, 2, 3, padding=1))
    with pytest.raises(ValueError, match='1x1'):
        fold_norm_into_next_conv(norm, nn.Conv2d(3, 2, 1, stride=2))
    # a GCL-like attention whose conv is 3x3 is left unfused
    gcl = nn.Module()
    gcl.attention = nn.Sequential(nn.BatchNorm2d(3), ConvModule(3, 3, 3, padding=1,
                                                                norm_cfg=None))
    assert not fuse_gcl_input_norm(gcl)
    assert isinstance(gcl.attention[0], nn.BatchNorm2d)


def test_norm_without_affine_folds():
    norm = nn.BatchNorm2d(3, affine=False).double().eval()
    norm.running_mean.copy_(torch.tensor([1., -2., 0.5]))
    norm.running_var.copy_(torch.tensor([4., 0.25, 1.]))
    conv = nn.Conv2d(3, 2, 1).double()
    z = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = conv(norm(z))
        fold_norm_into_next_conv(norm, conv)
        assert torch.allclose(conv(z), ref, atol=1e-12)
