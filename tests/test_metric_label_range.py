"""mmgscnn.evaluation.metrics.utils.RefusesOutOfRangeLabels: BoundaryFScore,
CropIoUMetric and BoundaryIoUMetric stop at ground-truth labels outside the classes (naming the
label files) instead of counting them; clean labels evaluate as before."""
import pytest
import torch

from mmgscnn.datasets.label_check import SegInputError
from mmgscnn.evaluation.metrics import BoundaryFScore, BoundaryIoUMetric, CropIoUMetric

CLASSES = ('a', 'b', 'c')


def sample(gt, path):
    pred = torch.zeros_like(gt)
    pred[:, 4:] = 1
    return dict(pred_sem_seg=dict(data=pred[None]), gt_sem_seg=dict(data=gt[None]),
                seg_map_path=path)


def labels(value=None):
    gt = torch.zeros(16, 24, dtype=torch.long)
    gt[:, 8:] = 2
    gt[0, :] = 255                # ignored: never a problem
    if value is not None:
        gt[5:7, 3:6] = value      # 6 pixels outside the 3 classes
    return gt


@pytest.mark.parametrize('make', [lambda: BoundaryFScore(tolerances=(1, )),
                                  lambda: CropIoUMetric(crop_factors=(0, ), vp_border=0),
                                  lambda: BoundaryIoUMetric(dilation_ratio=0.05)],
                         ids=['BoundaryFScore', 'CropIoUMetric', 'BoundaryIoUMetric'])
def test_out_of_range_labels_stop_the_evaluation_naming_the_files(make):
    clean = make()
    clean.dataset_meta = dict(classes=CLASSES)
    clean.process({}, [sample(labels(), 'a.png'), sample(labels(), 'b.png')])
    expected = clean.evaluate(2)

    metric = make()
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [sample(labels(), 'a.png'), sample(labels(37), 'b.png'),
                        sample(labels(3), 'c.png')])
    with pytest.raises(SegInputError, match=r'2 ground-truth label map\(s\) have values '
                       r'outside the 3 classes \(0\.\.2\) that are not ignore_index 255, '
                       r'e\.g\. b\.png \(6 px\), c\.png \(6 px\).*tools/check_data\.py'):
        metric.evaluate(3)
    # the next evaluation starts clean and scores as before
    metric.process({}, [sample(labels(), 'a.png'), sample(labels(), 'b.png')])
    assert metric.evaluate(2) == expected
