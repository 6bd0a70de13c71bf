"""CropIoUMetric: mIoU at the paper's crop factors, around the vanishing point."""
import numpy as np
import pytest
import torch
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from mmgscnn.evaluation.metrics import CropIoUMetric
from mmgscnn.evaluation.metrics.crop_iou_metric import class_areas

CLASSES = ('a', 'b', 'c', 'd')
PAPER = (0, 100, 200, 300, 400)
# The paper's crops on a 1024x2048 image: (top, bottom, left, right), end excluded.
PAPER_BOXES = [(0, 924, 100, 1948), (100, 824, 300, 1748), (200, 724, 500, 1548),
               (300, 624, 700, 1348), (400, 524, 900, 1148)]


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def random_maps(h, w, rng):
    gt = rng.integers(0, 4, (h, w))
    gt[rng.random((h, w)) < 0.1] = 255
    pred = np.where(rng.random((h, w)) < 0.7, gt, rng.integers(0, 4, (h, w)))
    pred[pred == 255] = 0
    return pred, gt


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def hand_miou(maps, boxes):
    """mIoU of the given crop of every image, counts summed over images (numpy)."""
    inter, union = np.zeros(4), np.zeros(4)
    for (pred, gt), (top, bottom, left, right) in zip(maps, boxes):
        pred, gt = pred[top:bottom, left:right], gt[top:bottom, left:right]
        valid = gt != 255
        for c in range(4):
            p, g = (pred == c) & valid, (gt == c) & valid
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    iou = inter[union > 0] / union[union > 0]
    return round(iou.mean() * 100, 2)


def test_paper_crops_on_cityscapes():
    boxes = CropIoUMetric(crop_factors=PAPER).crop_boxes(1024, 2048)
    assert boxes == PAPER_BOXES
    for top, bottom, left, right in boxes:  # all around the vanishing point
        assert (top + bottom) / 2 == 462 and (left + right) / 2 == 1024


def test_crops_scale_with_height_and_width():
    metric = CropIoUMetric(crop_factors=PAPER)
    assert metric.crop_boxes(512, 1024) == [tuple(e // 2 for e in b) for b in PAPER_BOXES]
    # CamVid 360x480 (4:3): rows scale by 360/1024, columns by 480/2048.
    assert metric.crop_boxes(360, 480) == [(0, 325, 23, 457), (35, 290, 70, 410),
                                           (70, 255, 117, 363), (105, 219, 164, 316),
                                           (141, 184, 211, 269)]
    # The crop keeps its fraction of the height and of the width.
    for c, (top, bottom, left, right) in zip(PAPER, metric.crop_boxes(360, 480)):
        assert abs((bottom - top) / 360 - (924 - 2 * c) / 1024) < 2 / 360
        assert abs((right - left) / 480 - (1848 - 4 * c) / 2048) < 2 / 480
    # Another reference size: the factors are pixels of that image.
    assert CropIoUMetric(crop_factors=(0, 10), reference_size=(360, 480),
                         vp_border=20).crop_boxes(360, 480) == [(0, 340, 20, 460),
                                                                (10, 330, 40, 440)]


def hood_and_top_errors():
    """256x512 maps (a quarter of 1024x2048): class 0 everywhere, class 1 in
    the 25 bottom rows (the paper's 100 px) predicted as class 0, and class 2
    predicted in the 25 top rows (100 px) where the truth is class 0."""
    gt = np.zeros((256, 512), np.int64)
    gt[-25:] = 1
    pred = np.zeros_like(gt)
    pred[:25] = 2
    return pred, gt


def test_known_regions():
    pred, gt = hood_and_top_errors()
    res = evaluate(CropIoUMetric(crop_factors=PAPER), [sample(pred, gt)])
    assert list(res) == ['mIoU@crop0', 'mIoU@crop100', 'mIoU@crop200', 'mIoU@crop300',
                         'mIoU@crop400']
    # Crop 0 (rows 0..230, columns 25..486): the bottom is cut, the top is not:
    # class 0 IoU = 206 / 231 rows, class 2 IoU = 0, class 1 absent.
    assert res['mIoU@crop0'] == round((206 / 231 + 0) / 2 * 100, 2)
    # From crop factor 100 (25 rows at this size) on, both strips are out.
    for c in PAPER[1:]:
        assert res[f'mIoU@crop{c}'] == 100.0
    # The whole image, for comparison: classes 0, 1 and 2 all count.
    whole = evaluate(IoUMetric(iou_metrics=['mIoU']), [sample(pred, gt)])['mIoU']
    assert whole == pytest.approx((206 * 512 / (231 * 512 + 25 * 512)) / 3 * 100, abs=0.01)


def test_only_the_crop_counts():
    # Perfect inside the crop of factor 200, wrong everywhere outside.
    gt = np.arange(256 * 512).reshape(256, 512) % 4
    top, bottom, left, right = [e // 4 for e in PAPER_BOXES[2]]
    pred = (gt + 1) % 4
    pred[top:bottom, left:right] = gt[top:bottom, left:right]
    res = evaluate(CropIoUMetric(crop_factors=PAPER), [sample(pred, gt)])
    assert res['mIoU@crop0'] < 100 and res['mIoU@crop100'] < 100
    assert res['mIoU@crop200'] == res['mIoU@crop300'] == res['mIoU@crop400'] == 100.0


def test_crop_factors_equal_mIoU_of_the_crop_by_hand():
    rng = np.random.default_rng(1)
    maps = [random_maps(*size, rng) for size in ((64, 128), (90, 120), (64, 128))]
    metric = CropIoUMetric(crop_factors=(300, 0, 150))  # any order, keys as given
    res = evaluate(metric, [sample(*m) for m in maps])
    assert list(res) == ['mIoU@crop300', 'mIoU@crop0', 'mIoU@crop150']
    # boxes by hand from the paper's protocol: edges c, 924 - c, 100 + 2c and
    # 1948 - 2c of 1024x2048, scaled and rounded (64x128: /16; 90x120: rows
    # x 90/1024, columns x 120/2048)
    hand = {300: [(19, 39, 44, 84), (26, 55, 41, 79)],
            0: [(0, 58, 6, 122), (0, 81, 6, 114)],
            150: [(9, 48, 25, 103), (13, 68, 23, 97)]}
    for c, (small, other) in hand.items():
        boxes = [small, other, small]
        assert res[f'mIoU@crop{c}'] == pytest.approx(hand_miou(maps, boxes), abs=1e-6)


def test_crop_edges_round_half_up():
    """128x256 is 1024x2048 / 8: edges at x.5 px round up (12.5 -> 13, 37.5
    -> 38, 218.5 -> 219, 115.5 -> 116, 243.5 -> 244), not to even."""
    boxes = CropIoUMetric(crop_factors=(0, 100, 300)).crop_boxes(128, 256)
    assert boxes == [(0, 116, 13, 244), (13, 103, 38, 219), (38, 78, 88, 169)]


def test_without_border_crop0_is_the_whole_image():
    rng = np.random.default_rng(2)
    samples = [sample(*random_maps(40, 60, rng)) for _ in range(3)]
    res = evaluate(CropIoUMetric(crop_factors=(0, 200), vp_border=0), samples)
    iou = evaluate(IoUMetric(iou_metrics=['mIoU']), samples)
    assert res['mIoU@crop0'] == pytest.approx(float(iou['mIoU']), abs=1e-4)  # float32
    assert CropIoUMetric(crop_factors=(200, ), vp_border=0).crop_boxes(1024, 2048) == \
        [(200, 824, 400, 1648)]


def test_class_areas_match_mmseg():
    rng = np.random.default_rng(3)
    pred, gt = (torch.as_tensor(m) for m in random_maps(30, 40, rng))
    ours = class_areas(pred, gt, 4, 255)
    assert ours.shape == (4, 4) and ours.dtype == torch.float32
    assert torch.equal(ours, torch.stack(IoUMetric.intersect_and_union(pred, gt, 4, 255)))


def test_per_image_results_are_counts():
    metric = CropIoUMetric(crop_factors=PAPER)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [sample(*hood_and_top_errors())])
    (counts, ) = metric.results
    assert counts.shape == (5, 4, 4)  # crop factors, (inter, union, pred, gt), classes
    # crop 0: 231 x 462 pixels, all labelled class 0.
    assert counts[0, 3].tolist() == [231 * 462, 0, 0, 0]


def test_empty_crops_are_rejected_at_construction():
    CropIoUMetric(crop_factors=(461, ))
    with pytest.raises(ValueError, match='crop factor 462 leaves no pixel'):
        CropIoUMetric(crop_factors=(0, 462))
    CropIoUMetric(crop_factors=(511, ), vp_border=0)
    with pytest.raises(ValueError, match='crop factor 512'):
        CropIoUMetric(crop_factors=(512, ), vp_border=0)


def test_empty_crop_after_scaling_is_an_error():
    pred = gt = np.zeros((4, 8), np.int64)
    with pytest.raises(ValueError, match='crop factor 400 .* of a 4x8 image'):
        evaluate(CropIoUMetric(crop_factors=(0, 400)), [sample(pred, gt)])


def test_bad_arguments_are_rejected():
    for bad in ((), (0, -10), (100, 100)):
        with pytest.raises(ValueError, match='crop_factors'):
            CropIoUMetric(crop_factors=bad)
    for bad in ((1024, ), (0, 2048), 1024, (1024.0, 2048)):
        with pytest.raises(ValueError, match='reference_size'):
            CropIoUMetric(reference_size=bad)
    with pytest.raises(ValueError, match='vp_border'):
        CropIoUMetric(vp_border=-1)


def test_centred_margins_are_gone_with_a_pointer():
    with pytest.raises(TypeError, match="'margins': 'crop_factors'"):
        METRICS.build(dict(type='CropIoUMetric', margins=(0, 100), scale_margins=True))
    with pytest.raises(TypeError, match='unknown arguments'):
        CropIoUMetric(crop_factor=(0, 100))


def test_class_keys_give_per_class_iou():
    rng = np.random.default_rng(4)
    maps = [random_maps(64, 128, rng) for _ in range(2)]
    samples = [sample(*m) for m in maps]
    metric = CropIoUMetric(crop_factors=(0, 300), vp_border=0, class_keys=True)
    res = evaluate(metric, samples)
    iou = IoUMetric.total_area_to_metrics(
        *[sum(x) for x in zip(*[IoUMetric.intersect_and_union(
            s['pred_sem_seg']['data'][0], s['gt_sem_seg']['data'][0], 4, 255)
            for s in samples])], ['mIoU'])['IoU']
    for name, value in zip(CLASSES, iou):
        assert res[f'IoU.{name}@crop0'] == pytest.approx(round(value * 100, 2), abs=1e-6)
    assert np.mean([res[f'IoU.{c}@crop300'] for c in CLASSES]) == \
        pytest.approx(res['mIoU@crop300'], abs=0.02)
    assert 'IoU.a@crop0' not in evaluate(CropIoUMetric(crop_factors=(0, 300)), samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_process_does_not_sync_with_the_host():
    metric = CropIoUMetric(crop_factors=PAPER)
    metric.dataset_meta = dict(classes=CLASSES)
    pred, gt = (torch.as_tensor(m).cuda() for m in hood_and_top_errors())
    batch = [dict(pred_sem_seg=dict(data=pred[None]), gt_sem_seg=dict(data=gt[None]))]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        metric.process({}, batch)
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert metric.results[0].is_cuda
    assert metric.evaluate(1)['mIoU@crop100'] == 100.0


def test_empty_rows_or_columns_alone_are_rejected_with_the_limits():
    """An empty reference crop in rows only or in columns only is refused,
    the message giving both limits: (Hr - b) / 2 and (Wr - 2b) / 4."""
    with pytest.raises(ValueError, match=r'c < 462 for the rows and c < 974 for the columns'):
        CropIoUMetric(crop_factors=(462, ), reference_size=(1024, 4096))  # rows 462..462
    with pytest.raises(ValueError, match=r'c < 974 for the rows and c < 462 for the columns'):
        CropIoUMetric(crop_factors=(462, ), reference_size=(2048, 2048))  # columns only
    with pytest.raises(ValueError, match='vp_border'):
        CropIoUMetric(vp_border=True)


@pytest.mark.parametrize('size,message', [
    ((4, 2048), 'rows 2..2, columns 900..1148'),  # 400 * 4/1024 -> 2, 524 * 4/1024 -> 2
    ((1024, 4), 'rows 400..524, columns 2..2')])  # 900 * 4/2048 -> 2, 1148 * 4/2048 -> 2
def test_crop_empty_after_scaling_in_rows_or_columns_alone(size, message):
    with pytest.raises(ValueError, match=f'of a {size[0]}x{size[1]} image after scaling '
                                         rf'\({message}\)'):
        CropIoUMetric(crop_factors=(400, )).crop_boxes(*size)


def test_prediction_and_label_of_other_sizes_are_named():
    with pytest.raises(ValueError, match=r'prediction \(64, 128\) and ground truth '
                                         r'\(64, 120\) differ in size'):
        evaluate(CropIoUMetric(), [sample(np.zeros((64, 128), np.int64),
                                          np.zeros((64, 120), np.int64))])


def test_crop_without_labelled_pixels_is_nan_and_arguments_reach_mmengine():
    gt = np.zeros((64, 128), np.int64)
    gt[10:40] = 255  # crop 300 of 64x128: rows 19..39, all ignored
    assert CropIoUMetric(collect_device='gpu').collect_device == 'gpu'
    metric = CropIoUMetric(crop_factors=(0, 300), prefix='crop', collect_dir='/tmp/x')
    assert (metric.prefix, metric.collect_dir) == ('crop', '/tmp/x')
    res = evaluate(metric, [sample(gt.copy(), gt)])
    assert res['crop/mIoU@crop0'] == 100.0 and np.isnan(res['crop/mIoU@crop300'])


def test_out_of_range_labels_name_the_files_three_at_most():
    """The mixin's message: the metric's name, the count, up to 3 files
    (label path, else image path, else '<image>'), also for one sample."""
    from mmgscnn.datasets.label_check import SegInputError
    bad = np.full((16, 32), 7, np.int64)  # classes 0..3
    one = dict(sample(bad.copy(), bad), seg_map_path='a.png')
    with pytest.raises(SegInputError, match=r'^CropIoUMetric: 1 ground-truth .* a\.png '
                                            r'\(512 px\)'):
        evaluate(CropIoUMetric(crop_factors=4.0), [one])  # a single number is accepted
    named = [dict(sample(bad.copy(), bad), img_path=f'i{i}.jpg') for i in range(4)]
    with pytest.raises(SegInputError, match=r'4 ground-truth .* e\.g\. i0\.jpg \(512 px\), '
                                            r'i1\.jpg \(512 px\), i2\.jpg \(512 px\);'):
        evaluate(CropIoUMetric(crop_factors=0), named)
    with pytest.raises(SegInputError, match=r'e\.g\. <image> \(512 px\);'):
        evaluate(CropIoUMetric(crop_factors=0), [sample(bad.copy(), bad)])


def test_messages_say_what_to_use():
    hint = ("CropIoUMetric got unknown arguments ['margins']; the centred crops with margins "
            "were replaced by the paper's crops around the vanishing point: use "
            "{'margins': 'crop_factors'} (see the class docstring)")
    with pytest.raises(TypeError) as err:
        CropIoUMetric(margins=(0, 100))
    assert str(err.value) == hint
    with pytest.raises(TypeError) as err:
        CropIoUMetric(crop_factor=(0, 100))
    assert str(err.value) == "CropIoUMetric got unknown arguments ['crop_factor']"
    with pytest.raises(ValueError, match=r'^CropIoUMetric\.crop_factors is empty; give distances '
                                         r'in pixels, e\.g\. crop_factors=\(0, 100, 200, 300, '
                                         r'400\)$'):
        CropIoUMetric(crop_factors=())
    with pytest.raises(ValueError, match=r'^CropIoUMetric\.reference_size must be two positive '
                                         r'integers \(height, width\)'):
        CropIoUMetric(reference_size=(0, 2048))
    CropIoUMetric(crop_factors=(0, ), reference_size=(1, 8), vp_border=0)  # 1 row is a size
    with pytest.raises(ValueError, match='use smaller crop factors or a smaller vp_border$'):
        CropIoUMetric(crop_factors=(462, ))


def test_per_class_iou_and_empty_crops_go_to_the_log():
    """The log gets, at INFO, the per-class IoU table (percent, 2 decimals)
    and, at WARNING, the crop factors without a labelled pixel."""
    import logging
    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        gt = np.zeros((64, 128), np.int64)
        gt[10:40] = 255  # crop 300: rows 19..39, all ignored
        pred = gt.copy()
        # crop 0 (rows 0..57, columns 6..121): 28 labelled rows x 116 columns of
        # class 0, 18 x 42 of them predicted 1: IoU 1 - 756 / 3248 = 76.72 %
        pred[40:, :48] = 1
        evaluate(CropIoUMetric(crop_factors=(0, 300)), [sample(pred, gt)])
    finally:
        logger.removeHandler(handler)
    text = [(r.levelno, r.getMessage()) for r in records]
    assert (logging.WARNING, 'CropIoUMetric: the crops of crop factor 300 hold no labelled '
            'pixel in any image; mIoU@crop300 is NaN') in text
    assert (logging.INFO, 'per class IoU at each crop factor (%):') in text
    table = [m for level, m in text if 'IoU@crop0' in m]
    assert len(table) == 1 and table[0].startswith('\n+')  # the table from a new line
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in table[0].splitlines() if line.startswith('|')}
    assert rows['Class'] == ['IoU@crop0', 'IoU@crop300']
    assert rows['a'][0] == '76.72' and rows['b'][0] == '0.0' and rows['c'][0] == 'nan'
