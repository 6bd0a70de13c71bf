"""mmgscnn.models.shape_stream.aspp_boundary_fusion: the boundary map as one
more ASPP branch of an ASPP-family decoder."""
import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import ASPPBoundaryFusion

from helpers import TINY_CHANNELS, tiny_decoder


def feats(n=2, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, 2 * size if i == 0 else size, 2 * size if i == 0 else size,
                        generator=g) for i, c in enumerate(TINY_CHANNELS)]


@pytest.mark.parametrize('kind', ['aspp', 'sepaspp'])
def test_branch_takes_the_pooled_boundary_into_the_bottleneck(kind):
    torch.manual_seed(0)
    decoder = MODELS.build(tiny_decoder(kind))
    plain_keys = set(decoder.state_dict())
    width = decoder.bottleneck.conv.in_channels
    fusion = ASPPBoundaryFusion(decoder, channels=8)
    assert decoder.bottleneck.conv.in_channels == width + 8
    assert set(decoder.state_dict()) == plain_keys  # a baseline checkpoint's names
    decoder.eval()
    fusion.eval()
    seen = []
    fusion.branch.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    x = feats()
    boundary = torch.rand(2, 1, 32, 32, requires_grad=True)
    with fusion.attached(boundary):
        out = decoder(x)
    # the ASPP level is 8x8: every branch pixel is the mean of a 4x4 block
    torch.testing.assert_close(seen[0], F.avg_pool2d(boundary, 4))
    out.sum().backward()
    assert boundary.grad.abs().sum() > 0
    with torch.no_grad(), fusion.attached(1 - boundary):
        assert not torch.allclose(decoder(x), out)


def test_other_decoders_are_refused_with_the_fusion_to_use():
    with pytest.raises(ValueError, match="ASPP-family decoder.*ClassifierBoundaryFusion"):
        ASPPBoundaryFusion(MODELS.build(tiny_decoder('psp')))
