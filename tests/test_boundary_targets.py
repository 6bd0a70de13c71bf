"""mmgscnn.models.shape_stream.boundary_targets: targets of the boundary BCE."""
import torch

from mmgscnn.models.shape_stream import boundary_target, near_ignore


def test_pixels_next_to_ignore_are_unknown_not_negative():
    label = torch.tensor([[[1, 1, 255, 255, 0, 0]]])
    target, valid = boundary_target(label, ignore_index=255, radius=1)
    assert target.flatten().tolist() == [0, 0, 0, 0, 0, 0]
    assert valid.flatten().tolist() == [True, False, False, False, False, True]
    target, valid = boundary_target(label, ignore_index=255, radius=2)
    assert valid.flatten().tolist() == [False] * 6


def test_edge_map_source_gets_the_same_band():
    label = torch.tensor([[[1, 1, 1, 255, 0, 0, 0, 2]]])
    edge = torch.tensor([[[[0, 0, 1, 0, 1, 0, 1, 1]]]])
    target, valid = boundary_target(label, 255, 1, edge_map=edge)
    assert valid.flatten().tolist() == [1, 1, 0, 0, 0, 1, 1, 1]
    assert target.flatten().tolist() == [0, 0, 0, 0, 0, 0, 1, 1]


def test_class_boundaries_far_from_ignore_stay_targets():
    label = torch.zeros(1, 8, 10, dtype=torch.long)
    label[..., 5:] = 3
    label[:, 0, :] = 255
    target, valid = boundary_target(label, 255, 1)
    assert not valid[0, 0, :2].any() and valid[0, 0, 2:].all()
    assert target[0, 0, 2:, 4:6].eq(1).all() and target[0, 0, 2:].sum() == 2 * 6
    assert torch.equal(near_ignore(label, 255, 1)[0, 0, :, 0],
                       torch.tensor([True, True] + [False] * 6))
