"""mmgscnn.models.shape_stream.boundary_fusion: the boundary map of the
running forward pass, area-averaged to the size a fusion asks for, and the
fusion chosen for a decoder when the config names none."""
import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import BoundaryFusion, default_fusion_type

from helpers import tiny_decoder


def test_boundary_map_exists_only_while_attached():
    fusion = BoundaryFusion()
    with pytest.raises(RuntimeError, match='through GatedShapeHead'):
        fusion.boundary_at((4, 4))
    boundary = torch.arange(16.).view(1, 1, 4, 4)
    with fusion.attached(boundary):
        assert fusion.boundary_at((4, 4)) is boundary
        # area: each output pixel is the mean of its 2x2 block
        torch.testing.assert_close(fusion.boundary_at((2, 2)),
                                   torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    with pytest.raises(RuntimeError):
        fusion.boundary_at((4, 4))
    with pytest.raises(KeyError):  # released when the forward pass fails too
        with fusion.attached(boundary):
            raise KeyError('forward failed')
    with pytest.raises(RuntimeError):
        fusion.boundary_at((4, 4))


@pytest.mark.parametrize('kind,fusion', [('aspp', 'ASPPBoundaryFusion'),
                                         ('sepaspp', 'ASPPBoundaryFusion'),
                                         ('psp', 'ClassifierBoundaryFusion'),
                                         ('fcn', 'ClassifierBoundaryFusion'),
                                         ('uper', 'ClassifierBoundaryFusion')])
def test_default_fusion_follows_the_decoder(kind, fusion):
    decoder = MODELS.build(tiny_decoder(kind))
    assert default_fusion_type(decoder) == fusion
    assert MODELS.get(fusion) is not None


def test_area_average_matches_average_pooling_on_a_random_map():
    fusion = BoundaryFusion()
    boundary = torch.rand(2, 1, 32, 48)
    with fusion.attached(boundary):
        torch.testing.assert_close(fusion.boundary_at((8, 12)), F.avg_pool2d(boundary, 4))
