"""BoundaryIoUMetric: bands against a chessboard distance transform and the
reference's iterated 3x3 erosion, a hand-made case, aggregation, keys."""
import logging
import warnings
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_cdt

from mmgscnn.evaluation.metrics import BoundaryIoUMetric
from mmgscnn.evaluation.metrics.boundary_iou import band_width, boundary_bands


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(np.asarray(pred))[None]),
                gt_sem_seg=dict(data=torch.as_tensor(np.asarray(gt))[None]))


def new_metric(num_classes, **kwargs):
    metric = BoundaryIoUMetric(**kwargs)
    metric.dataset_meta = dict(classes=tuple(f'c{i}' for i in range(num_classes)))
    return metric


def reference_band(mask, d):
    """Pixels of ``mask`` within chessboard distance d of a pixel outside it
    (the frame is outside): float-free, from scipy's distance transform."""
    dist = distance_transform_cdt(np.pad(mask, 1), metric='chessboard')[1:-1, 1:-1]
    return mask & (dist <= d)


def reference_biou(preds, gts, num_classes, ratio, ignore=255):
    inter, union = np.zeros(num_classes), np.zeros(num_classes)
    for pred, gt in zip(preds, gts):
        d = max(1, int(round(ratio * np.hypot(*gt.shape))))
        for c in range(num_classes):
            g = reference_band((gt == c), d)
            p = reference_band((pred == c) & (gt != ignore), d)
            inter[c] += (g & p).sum()
            union[c] += (g | p).sum()
    with np.errstate(invalid='ignore'):
        return inter / union


@pytest.mark.parametrize('d', [1, 2, 3, 7])
def test_bands_equal_the_chessboard_distance_and_the_iterated_erosion(d):
    rng = np.random.default_rng(d)
    label = np.kron(rng.integers(-1, 4, (9, 13)), np.ones((3, 2), np.int64))
    got = boundary_bands(torch.from_numpy(label), d).numpy()
    for c in range(4):
        want = reference_band(label == c, d)
        np.testing.assert_array_equal(got == c, want)
        # the reference definition: pad 1 with 0, erode d times by a 3x3 square
        eroded = cv2.erode(np.pad((label == c).astype(np.uint8), 1),
                           np.ones((3, 3), np.uint8), iterations=d)[1:-1, 1:-1]
        np.testing.assert_array_equal(want, (label == c) & (eroded == 0))
    assert (got[label == -1] == -1).all()


def test_band_width():
    assert band_width(1024, 2048, 0.02) == 46   # 0.02 * 2289.7
    assert band_width(360, 480, 0.02) == 12     # 0.02 * 600
    assert band_width(10, 10, 0.02) == 1        # 0.28 -> at least 1


def square_and_shifted():
    """10x10: class 1 on rows 2..7, cols 2..7; and the same one column right."""
    gt = np.zeros((10, 10), np.int64)
    gt[2:8, 2:8] = 1
    shifted = np.zeros_like(gt)
    shifted[2:8, 3:9] = 1
    return gt, shifted


def test_hand_made_square_shifted_by_one_pixel():
    # 10x10, d = round(0.1 * 14.1) = 1. GT square rows 2..7, cols 2..7; the
    # prediction's is one column to the right. Class 1: rings of 20 pixels
    # sharing rows 2 and 7, cols 3..7: 10 -> 10 / 30. Class 0: all 64 GT
    # pixels are in the band; in the prediction column 1, rows 1..8, lies 2 px
    # from the frame and the square, so its band has 56; 58 pixels are 0 in
    # both, less those 8: 50 shared, union 64 + 56 - 50 = 70.
    gt, pred = square_and_shifted()
    metric = new_metric(2, dilation_ratio=0.1)
    metric.process({}, [sample(pred, gt)])
    np.testing.assert_allclose(metric.class_scores(metric.results), [50 / 70, 1 / 3])
    want = float(round((Fraction(50, 70) + Fraction(1, 3)) / 2 * 100, 2))
    assert metric.evaluate(1) == dict(mBIoU=want)


def test_random_maps_with_ignored_pixels_equal_the_reference():
    rng = np.random.default_rng(0)
    preds, gts = [], []
    for h, w, cell in ((40, 60, 2), (33, 47, 3), (64, 64, 1)):
        gt = np.kron(rng.integers(0, 5, (h // cell + 1, w // cell + 1)),
                     np.ones((cell, cell), np.int64))[:h, :w]
        gt[rng.random((h, w)) < 0.1] = 255
        pred = np.kron(rng.integers(0, 5, (h // cell + 1, w // cell + 1)),
                       np.ones((cell, cell), np.int64))[:h, :w]
        preds.append(pred)
        gts.append(gt)
    metric = new_metric(6, dilation_ratio=0.04)  # class 5 absent: NaN, left out
    metric.process({}, [sample(p, g) for p, g in zip(preds, gts)])
    got = metric.class_scores(metric.results)
    want = reference_biou(preds, gts, 6, 0.04)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(got[5]) and not np.isnan(got[:5]).any() and (got[:5] < 1).all()
    assert metric.evaluate(3)['mBIoU'] == pytest.approx(np.nanmean(want) * 100, abs=0.006)


def test_ignored_pixels_belong_to_no_class():
    gt = np.zeros((12, 12), np.int64)
    gt[:, 6:] = 1
    pred = gt.copy()
    pred[:, 4:] = 1
    gt_ignored = gt.copy()
    gt_ignored[:, 3:8] = 255   # hides the disagreement: prediction is then perfect
    metric = new_metric(2, dilation_ratio=0.05)
    metric.process({}, [sample(pred, gt_ignored)])
    np.testing.assert_array_equal(metric.class_scores(metric.results), [1.0, 1.0])
    metric = new_metric(2, dilation_ratio=0.05)
    metric.process({}, [sample(pred, gt)])
    assert (metric.class_scores(metric.results) < 1).all()


def test_counts_are_summed_over_the_dataset_not_averaged():
    gt, shifted = square_and_shifted()
    metric = new_metric(2, dilation_ratio=0.1)
    metric.process({}, [sample(gt, gt), sample(shifted, gt)])
    # class 1: (20 + 10) / (20 + 30), not the mean of 1 and 1/3
    assert metric.class_scores(metric.results)[1] == pytest.approx(30 / 50)


def test_nothing_anywhere_is_nan_and_bad_ratio_refused():
    metric = new_metric(2)
    metric.process({}, [sample(np.full((4, 4), 255), np.full((4, 4), 255))])
    assert np.isnan(metric.evaluate(1)['mBIoU'])
    for bad in (0, 1.5, -0.1, True, '0.02'):
        with pytest.raises(ValueError, match='dilation_ratio must be a number in'):
            BoundaryIoUMetric(dilation_ratio=bad)


def test_size_mismatch_is_named():
    metric = new_metric(2)
    with pytest.raises(ValueError, match=r'prediction \(4, 5\) and ground truth \(4, 4\)'):
        metric.process({}, [sample(np.zeros((4, 5), np.int64), np.zeros((4, 4), np.int64))])


def test_ratio_one_is_refused_with_the_metric_name():
    with pytest.raises(ValueError, match=r'^BoundaryIoUMetric\.dilation_ratio must be a number '
                                         r'in \(0, 1\), a fraction'):
        BoundaryIoUMetric(dilation_ratio=1)


def test_base_metric_arguments_are_passed_on(tmp_path):
    metric = BoundaryIoUMetric(collect_device='gpu', prefix='val')
    assert (metric.collect_device, metric.prefix) == ('gpu', 'val')
    assert BoundaryIoUMetric(collect_dir=str(tmp_path)).collect_dir == str(tmp_path)


def test_a_union_of_one_pixel_counts():
    # class 0: 1 of 1 pixel; class 1: 0 of 2; class 2: empty union
    results = [torch.tensor([[1., 0., 0.], [1., 2., 0.]])]
    scores = new_metric(3).class_scores(results)
    np.testing.assert_array_equal(scores[:2], [1.0, 0.0])
    assert np.isnan(scores[2])


def test_uint8_ground_truth_equals_int64():
    from mmgscnn.evaluation.metrics.boundary_iou import band_areas
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 3, (12, 16))
    gt[:3, :4] = 255
    pred = rng.integers(0, 3, (12, 16))
    expected = band_areas(torch.as_tensor(pred), torch.as_tensor(gt), 3, 255, 0.1)
    got = band_areas(torch.as_tensor(pred), torch.as_tensor(gt, dtype=torch.uint8), 3, 255, 0.1)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


class _Records(logging.Handler):
    """Keeps (level, message) of every record it gets."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append((record.levelno, record.getMessage()))


def log_records(metric):
    """(level, message) of what ``metric.evaluate`` logs, and its result,
    with numpy's warnings turned into errors."""
    from mmengine.logging import MMLogger
    logger, records = MMLogger.get_current_instance(), _Records()
    logger.addHandler(records)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error', RuntimeWarning)
            return records.seen, metric.evaluate(1)
    finally:
        logger.removeHandler(records)


def test_per_class_table_goes_to_the_log_in_percent():
    gt, shifted = square_and_shifted()
    metric = new_metric(3, dilation_ratio=0.1)
    metric.process({}, [sample(shifted, gt)])
    biou = metric.class_scores(metric.results)
    text, out = log_records(metric)
    # class 1: 10 / 30 = 33.33 %, class 2 absent (NaN, left out of the mean)
    assert (logging.INFO, 'per class Boundary IoU (%, dilation ratio 0.1):') in text
    table = [m for level, m in text if level == logging.INFO and 'BIoU' in m and '|' in m]
    assert len(table) == 1 and table[0].startswith('\n+')
    rows = {line.split('|')[1].strip(): line.split('|')[2].strip()
            for line in table[0].splitlines() if line.startswith('|')}
    assert rows['Class'] == 'BIoU' and rows['c1'] == '33.33' and rows['c2'] == 'nan'
    assert not [m for level, m in text if level >= logging.WARNING]
    assert out['mBIoU'] == round(float(biou[:2].mean()) * 100, 2)


def test_nothing_anywhere_warns_once_and_no_numpy_warning():
    metric = new_metric(2)
    metric.process({}, [sample(np.full((4, 4), 255), np.full((4, 4), 255))])
    text, out = log_records(metric)
    assert np.isnan(out['mBIoU'])
    assert [t for t in text if t[0] >= logging.WARNING] == [(
        logging.WARNING, 'BoundaryIoUMetric: no class is in the ground truth or the '
        'prediction of any image; mBIoU is NaN')]
