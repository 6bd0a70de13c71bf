"""CropIoUMetric: mIoU on centre crops (the paper's distance-based evaluation)."""
import logging
import math

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmseg.evaluation.metrics import IoUMetric

from mmgscnn.evaluation.metrics import CropIoUMetric

CLASSES = ('a', 'b', 'c', 'd')


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def random_samples(n=4, h=20, w=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gt = rng.integers(0, 4, (h, w))
        gt[rng.random((h, w)) < 0.1] = 255
        pred = np.where(rng.random((h, w)) < 0.7, gt, rng.integers(0, 4, (h, w)))
        pred[pred == 255] = 0
        out.append(sample(pred, gt))
    return out


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def hand_miou(samples, m):
    """mIoU of the centre crops, summed over images, by hand (numpy)."""
    inter, union = np.zeros(4), np.zeros(4)
    for s in samples:
        pred = s['pred_sem_seg']['data'][0].numpy()
        gt = s['gt_sem_seg']['data'][0].numpy()
        h, w = gt.shape
        pred, gt = pred[m:h - m, m:w - m], gt[m:h - m, m:w - m]
        valid = gt != 255
        for c in range(4):
            p, g = (pred == c) & valid, (gt == c) & valid
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    iou = inter[union > 0] / union[union > 0]
    return round(iou.mean() * 100, 2)


def test_crop0_equals_iou_metric():
    samples = random_samples()
    res = evaluate(CropIoUMetric(margins=(0, 3)), samples)
    iou = evaluate(IoUMetric(iou_metrics=['mIoU']), samples)
    assert res['mIoU@crop0'] == pytest.approx(float(iou['mIoU']), abs=1e-6)
    assert res['mIoU@crop0'] != res['mIoU@crop3']


def test_margins_equal_mIoU_of_the_crop_by_hand():
    samples = random_samples(seed=1)
    res = evaluate(CropIoUMetric(margins=(0, 2, 5, 9)), samples)
    assert list(res) == ['mIoU@crop0', 'mIoU@crop2', 'mIoU@crop5', 'mIoU@crop9']
    for m in (0, 2, 5, 9):
        assert res[f'mIoU@crop{m}'] == pytest.approx(hand_miou(samples, m), abs=1e-6)


def test_only_the_crop_counts():
    # Perfect in the centre, wrong in a 3 px frame: 100 from margin 3 on.
    gt = np.zeros((16, 16), np.int64)
    gt[5:11, 5:11] = 1
    pred = gt.copy()
    pred[:3, :] = pred[-3:, :] = pred[:, :3] = pred[:, -3:] = 2
    res = evaluate(CropIoUMetric(margins=(0, 2, 3, 6)), [sample(pred, gt)])
    assert res['mIoU@crop0'] < 100 and res['mIoU@crop2'] < 100
    assert res['mIoU@crop3'] == res['mIoU@crop6'] == 100.0


def test_scaled_margins():
    metric = CropIoUMetric(margins=(0, 100, 200, 300, 400), scale_margins=True)
    assert metric.margin_pixels(1024) == [0, 100, 200, 300, 400]
    assert metric.margin_pixels(360) == [0, 35, 70, 105, 141]  # CamVid
    assert CropIoUMetric(margins=(0, 100)).margin_pixels(360) == [0, 100]
    # A scaled margin is applied in pixels of the image: 8 of 16 rows at 512.
    samples = random_samples(h=16, w=24, seed=2)
    res = evaluate(CropIoUMetric(margins=(0, 128), scale_margins=True,
                                 reference_height=512), samples)
    assert res['mIoU@crop128'] == pytest.approx(hand_miou(samples, 4), abs=1e-6)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_empty_crop_is_nan_with_a_warning():
    samples = random_samples(h=10, w=30)
    logger = MMLogger.get_current_instance()
    records = Records()
    logger.addHandler(records)
    try:
        res = evaluate(CropIoUMetric(margins=(0, 4, 5, 7)), samples)
    finally:
        logger.removeHandler(records)
    assert not math.isnan(res['mIoU@crop4'])  # 2 rows left
    assert math.isnan(res['mIoU@crop5']) and math.isnan(res['mIoU@crop7'])
    log = '\n'.join(records.messages)
    assert 'margin 5 leaves an empty crop' in log
    assert 'margin 7 leaves an empty crop' in log
    assert 'margin 4 leaves' not in log


def test_bad_margins_are_rejected():
    for bad in ((), (0, -10), (100, 100)):
        with pytest.raises(ValueError, match='margins'):
            CropIoUMetric(margins=bad)


def test_class_keys_give_per_class_iou():
    samples = random_samples(seed=2)
    res = evaluate(CropIoUMetric(margins=(0, 4), class_keys=True), samples)
    iou = IoUMetric.total_area_to_metrics(
        *[sum(x) for x in zip(*[IoUMetric.intersect_and_union(
            s['pred_sem_seg']['data'][0], s['gt_sem_seg']['data'][0], 4, 255)
            for s in samples])], ['mIoU'])['IoU']
    for name, value in zip(CLASSES, iou):
        assert res[f'IoU.{name}@crop0'] == pytest.approx(round(value * 100, 2), abs=1e-6)
    assert np.mean([res[f'IoU.{c}@crop4'] for c in CLASSES]) == \
        pytest.approx(res['mIoU@crop4'], abs=0.02)
    assert 'IoU.a@crop0' not in evaluate(CropIoUMetric(margins=(0, 4)), samples)
