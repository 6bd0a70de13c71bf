"""mmgscnn.models.shape_stream.gated_spatial_conv: the gated convolution
layer (GCL)."""
import pytest
import torch

from mmgscnn.models import GatedSpatialConv


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
