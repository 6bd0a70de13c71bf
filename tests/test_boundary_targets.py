"""mmgscnn.models.shape_stream.boundary_targets: label boundaries and the
targets of the boundary BCE."""
import pytest
import torch

from mmgscnn.models.shape_stream import boundary_target, label_boundaries, near_ignore

from helpers import two_regions


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


@pytest.mark.parametrize('radius', [1, 2, 3])
def test_two_regions_give_a_band_of_width_2r(radius):
    boundary, valid = label_boundaries(two_regions(col=8), radius=radius)
    b = boundary[0, 0]
    expected = torch.zeros(12, 16)
    expected[:, 8 - radius:8 + radius] = 1
    assert torch.equal(b, expected)
    assert valid.all()


def test_label_zero_boundaries_are_found():
    label = torch.zeros(1, 10, 10, dtype=torch.long)
    label[:, 4:6, 4:6] = 0
    label[:, :, 7:] = 3       # class 0 next to class 3
    b = label_boundaries(label)[0][0, 0]
    assert b[:, 6].all() and b[:, 7].all() and b[:, :6].sum() == 0


def test_frame_and_ignore_make_no_boundary():
    label = torch.full((1, 10, 12), 2, dtype=torch.long)
    b = label_boundaries(label)[0]
    assert b.sum() == 0  # a single class: the image frame is no boundary
    label[:, 3:7, 3:7] = 255
    b, valid = label_boundaries(label, ignore_index=255)
    assert b.sum() == 0  # class 2 next to ignored pixels: no boundary
    assert not valid[0, 0, 3:7, 3:7].any() and valid.sum() == 120 - 16
    # an ignored strip between two classes keeps them apart at radius 1 ...
    label = two_regions(col=6)
    label[..., 6:8] = 255
    assert label_boundaries(label, radius=1)[0].sum() == 0
    # ... and at radius 3 the pixels 3 columns apart see each other across it
    b = label_boundaries(label, radius=3)[0][0, 0]
    assert b[:, 5].all() and b[:, 8].all() and b.sum() == 2 * 12
