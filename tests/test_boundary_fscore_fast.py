"""BoundaryFScore's CPU distance path gives today's counts exactly (issue 23)."""
import math

import numpy as np
import pytest
import torch

from mmgscnn.evaluation.metrics import BoundaryFScore
from mmgscnn.evaluation.metrics.boundary_fscore import (disk_half_widths,
                                                         disk_threshold)
from reference_boundary_fscore import image_counts as reference_counts

RADII = (0, 1, 1.5, 2, math.sqrt(2), 2.5, 3, 3.2, 5, 9, 12)


def offsets(radius):
    return {(dx, dy) for dy, w in disk_half_widths(radius)
            for dx in range(-w, w + 1) for dy in (dy, -dy)}


@pytest.mark.parametrize('radius', RADII + (0.5, 4.99, 7.07, 20, 45.3))
def test_disk_threshold_is_the_disk(radius):
    limit = disk_threshold(radius)
    r = int(radius) + 2
    within = {(dx, dy) for dx in range(-r, r + 1) for dy in range(-r, r + 1)
              if dx * dx + dy * dy <= limit}
    assert within == offsets(radius)


def test_disk_threshold_values():
    # By hand: 1 -> 4-neighbours (d^2 1); 1.5 -> 8-neighbours (2); 2.5 -> up to (1, 2) (5).
    assert [disk_threshold(r) for r in (0, 1, 1.5, 2, 2.5, 3)] == [0, 1, 2, 4, 5, 9]


def random_maps(rng, h, w, cell, num_classes, ignored):
    def blocky():
        small = rng.integers(0, num_classes, (h // cell + 1, w // cell + 1))
        return np.kron(small, np.ones((cell, cell), np.int64))[:h, :w]
    gt, pred = blocky(), blocky()
    gt[rng.random((h, w)) < ignored] = 255
    pred[rng.random((h, w)) < 0.01] = 255  # predicted ignore_index: no class
    return torch.from_numpy(pred), torch.from_numpy(gt)


@pytest.mark.parametrize('seed,h,w,cell,ignored', [
    (0, 40, 57, 1, 0.05), (1, 64, 48, 3, 0.1), (2, 97, 130, 7, 0.02), (3, 31, 200, 2, 0.3)])
def test_counts_equal_the_frozen_max_pool_counts(seed, h, w, cell, ignored):
    rng = np.random.default_rng(seed)
    pred, gt = random_maps(rng, h, w, cell, 5, ignored)
    metric = BoundaryFScore(tolerances=RADII)
    got = metric.image_counts(pred, gt, 5)
    want = reference_counts(pred, gt, 5, RADII)
    assert got.dtype == torch.int64 and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (got[:, :, 1] > 0).all()  # every class has a boundary: a real test


def test_scaled_tolerances_and_absent_classes_equal_the_frozen_counts():
    rng = np.random.default_rng(4)
    pred, gt = random_maps(rng, 90, 180, 5, 3, 0.05)  # classes 3..6 absent
    metric = BoundaryFScore(scale_tolerances=True)
    got = metric.image_counts(pred, gt, 7)
    want = reference_counts(pred, gt, 7, metric.radii(90, 180))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (got[:, 3:] == 0).all()


def test_a_class_in_one_map_only():
    gt = torch.zeros(20, 20, dtype=torch.long)
    gt[5:10, 5:10] = 1
    pred = torch.zeros_like(gt)
    pred[12:16, 2:8] = 2
    got = BoundaryFScore(tolerances=(1, 3)).image_counts(pred, gt, 3)
    torch.testing.assert_close(got, reference_counts(pred, gt, 3, (1, 3)), rtol=0, atol=0)
    assert got[:, 1, 1].tolist() == [0, 0] and got[:, 2, 3].tolist() == [0, 0]


def test_the_dilation_path_of_cuda_gives_the_same_counts():
    # counts_by_dilation is what CUDA runs; here on the CPU, against the distance path
    rng = np.random.default_rng(5)
    pred, gt = random_maps(rng, 50, 70, 3, 4, 0.1)
    metric = BoundaryFScore(tolerances=RADII)
    valid = gt != 255
    masked = torch.where(valid, pred, torch.full_like(pred, 255))
    by_dilation = metric.counts_by_dilation(masked, gt, valid, masked != 255, 4, list(RADII))
    torch.testing.assert_close(by_dilation, metric.image_counts(pred, gt, 4), rtol=0, atol=0)
    assert by_dilation[:, :, 0].sum() > 0
