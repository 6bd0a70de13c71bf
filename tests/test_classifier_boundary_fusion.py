"""mmgscnn.models.shape_stream.classifier_boundary_fusion: the boundary map
joins the decoder's features right before its classifier."""
import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import ClassifierBoundaryFusion

from helpers import TINY_CHANNELS, tiny_decoder


@pytest.mark.parametrize('kind', ['fcn', 'psp'])
def test_classifier_sees_the_mixed_features_and_boundary(kind):
    torch.manual_seed(0)
    decoder = MODELS.build(tiny_decoder(kind))
    plain_keys = set(decoder.state_dict())
    fusion = ClassifierBoundaryFusion(decoder, channels=8)
    assert set(decoder.state_dict()) == plain_keys  # a baseline checkpoint's names
    decoder.eval()
    fusion.eval()
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(2, c, 8, 8, generator=g) for c in TINY_CHANNELS]
    boundary = torch.rand(2, 1, 16, 16, requires_grad=True)
    with fusion.attached(boundary):
        out = decoder(x)
    with torch.no_grad():
        feat = decoder._forward_feature(x)                       # (2, channels, 8, 8)
        lifted = fusion.branch(F.avg_pool2d(boundary, 2))
        expected = decoder.conv_seg.forward(fusion.mix(torch.cat([feat, lifted], 1)))
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert boundary.grad.abs().sum() > 0


def test_a_decoder_that_is_no_mmseg_head_is_refused():
    with pytest.raises(ValueError, match='BaseDecodeHead'):
        ClassifierBoundaryFusion(torch.nn.Conv2d(4, 4, 1))
