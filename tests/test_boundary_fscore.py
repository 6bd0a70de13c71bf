"""BoundaryFScore: boundaries, Euclidean tolerance, aggregation, ignore, ranks."""
import logging
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch

from mmgscnn.evaluation.metrics import BoundaryFScore
from mmgscnn.evaluation.metrics.boundary_fscore import disk_dilate
from test_boundary_iou import log_records

CLASSES = ('zero', 'one', 'two')


def sample(pred, gt):
    """A data sample as BaseMetric.process receives it: (1, H, W) tensors."""
    return dict(pred_sem_seg=dict(data=torch.as_tensor(np.asarray(pred))[None]),
                gt_sem_seg=dict(data=torch.as_tensor(np.asarray(gt))[None]))


def new_metric(classes=CLASSES, **kwargs):
    metric = BoundaryFScore(**kwargs)
    metric.dataset_meta = dict(classes=classes)
    return metric


def run(samples, classes=CLASSES, **kwargs):
    metric = new_metric(classes, **kwargs)
    metric.process({}, samples)
    counts = torch.stack(metric.results).sum(0).numpy()
    per_class = BoundaryFScore.counts_to_scores(counts)['fscore']  # (T, C)
    return metric.evaluate(len(samples)), per_class


def square_scene(h=32, w=32, y0=10, x0=9, size=10, dy=0, dx=0, cls=1):
    label = np.zeros((h, w), np.int64)
    label[y0 + dy:y0 + dy + size, x0 + dx:x0 + dx + size] = cls
    return label


# --------------------------------------------------------------- the pieces

def test_disk_dilate_is_the_euclidean_disk():
    rng = np.random.default_rng(0)
    mask = rng.random((2, 15, 17)) < 0.04
    yy, xx = np.mgrid[:15, :17]
    for radius in (0, 1, 1.5, 2, 3, 4.2, 20):
        got = disk_dilate(torch.from_numpy(mask), radius).numpy()
        for n in range(2):
            ys, xs = np.nonzero(mask[n])
            d2 = (yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2
            want = (d2 <= radius * radius + 1e-9).any(-1)
            np.testing.assert_array_equal(got[n], want, err_msg=f'radius {radius}')


def test_disk_dilate_refuses_a_negative_radius_and_keeps_empty_maps():
    with pytest.raises(ValueError, match=r'^radius must be >= 0 pixels, got -1$'):
        disk_dilate(torch.ones(1, 3, 3, dtype=torch.bool), -1)
    for shape in ((2, 0, 5), (2, 5, 0), (0, 4, 4)):
        out = disk_dilate(torch.zeros(shape, dtype=torch.bool), 2)
        assert out.shape == shape and out.dtype == torch.bool


def reference_counts(pred, gt, num_classes, radii, ignore=255):
    """Per-pixel loops: the definition, written out."""
    pred = np.where(gt == ignore, ignore, pred)
    h, w = gt.shape

    def boundary(label):
        out = np.zeros((num_classes, h, w), bool)
        for y in range(h):
            for x in range(w):
                c = label[y, x]
                if c == ignore or c >= num_classes:
                    continue
                for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    if 0 <= ny < h and 0 <= nx < w and label[ny, nx] != ignore \
                            and label[ny, nx] != c:
                        out[c, y, x] = True
        return out

    pb, gb = boundary(pred), boundary(gt)
    counts = np.zeros((len(radii), num_classes, 4), np.int64)
    for t, r in enumerate(radii):
        for c in range(num_classes):
            p, g = np.argwhere(pb[c]), np.argwhere(gb[c])
            if len(p) and len(g):
                d = np.sqrt(((p[:, None] - g[None]) ** 2).sum(-1))
                counts[t, c, 0] = (d.min(1) <= r).sum()
                counts[t, c, 2] = (d.min(0) <= r).sum()
            counts[t, c, 1], counts[t, c, 3] = len(p), len(g)
    return counts


def test_counts_equal_the_definition_on_random_maps():
    rng = np.random.default_rng(1)
    metric = new_metric(tolerances=(0, 1, 2, 3.5))
    for _ in range(3):
        # Blocky labels (2x2 cells) with some ignored cells.
        gt = np.kron(rng.integers(0, 3, (7, 8)), np.ones((2, 2), np.int64))
        gt[np.kron(rng.random((7, 8)) < 0.15, np.ones((2, 2), bool))] = 255
        pred = np.kron(rng.integers(0, 3, (7, 8)), np.ones((2, 2), np.int64))
        got = metric.image_counts(torch.from_numpy(pred), torch.from_numpy(gt), 3)
        want = reference_counts(pred, gt, 3, (0, 1, 2, 3.5))
        np.testing.assert_array_equal(got.numpy(), want)
        assert got.shape == (4, 3, 4) and got.dtype == torch.int64


def test_tolerance_scaling():
    metric = BoundaryFScore(tolerances=(3, 5, 9, 12), scale_tolerances=True)
    assert metric.radii(1024, 2048) == [3, 5, 9, 12]
    # CamVid: diagonal 600 / 2289.7 -> 0.79, 1.31, 2.36, 3.14 px
    assert metric.radii(360, 480) == [1, 1, 2, 3]
    assert metric.radii(2048, 4096) == [6, 10, 18, 24]
    assert BoundaryFScore(tolerances=(3, 5)).radii(360, 480) == [3, 5]


def test_bad_tolerances_are_rejected():
    for bad in ((), (-1, 2), (3, 3), ('3', )):
        with pytest.raises(ValueError, match='tolerances'):
            BoundaryFScore(tolerances=bad)


# ---------------------------------------------------------------- behaviour

def test_perfect_prediction_scores_one_for_present_classes():
    gt = square_scene()
    gt[2:6, 20:30] = 2
    res, per_class = run([sample(gt, gt)], tolerances=(0, 3))
    assert res == {'mBF@0px': 100.0, 'mBF@3px': 100.0}
    np.testing.assert_array_equal(per_class, np.ones((2, 3)))


def test_absent_everywhere_is_nan_and_left_out_of_the_mean():
    gt = square_scene()
    res, per_class = run([sample(gt, gt)], tolerances=(2, ))
    assert res == {'mBF@2px': 100.0}
    assert np.isnan(per_class[0, 2]) and per_class[0, 0] == per_class[0, 1] == 1


def test_shift_by_k_pixels_is_matched_from_tolerance_k_on():
    gt = square_scene()
    pred = square_scene(dx=2)
    res, per_class = run([sample(pred, gt)], tolerances=(1, 2, 3))
    assert res['mBF@2px'] == res['mBF@3px'] == 100.0
    assert res['mBF@1px'] < 100.0
    assert (per_class[0, :2] < 1).all()


def test_tolerance_is_euclidean_not_chebyshev():
    # A (3, 4) shift is 5 px away: a square (Chebyshev) window of radius 4
    # would already match it, the disk of radius 4 does not.
    gt = square_scene(h=40, w=40)
    pred = square_scene(h=40, w=40, dy=4, dx=3)
    res, _ = run([sample(pred, gt)], tolerances=(4, 5))
    assert res['mBF@5px'] == 100.0
    assert res['mBF@4px'] < 100.0


def test_empty_prediction_scores_zero():
    gt = square_scene()
    everything_zero = np.zeros_like(gt)
    res, per_class = run([sample(everything_zero, gt)], tolerances=(3, 12))
    assert res == {'mBF@3px': 0.0, 'mBF@12px': 0.0}
    nothing = np.full_like(gt, 255)  # a prediction of 'ignore' everywhere
    res, _ = run([sample(nothing, gt)], tolerances=(3, 12))
    assert res == {'mBF@3px': 0.0, 'mBF@12px': 0.0}


def test_predicted_class_without_gt_scores_zero():
    gt = square_scene()
    pred = gt.copy()
    pred[2:6, 2:6] = 2  # class 2 is nowhere in the GT
    _, per_class = run([sample(pred, gt)], tolerances=(2, ))
    assert per_class[0, 2] == 0.0


def test_ignored_pixels_change_nothing():
    rng = np.random.default_rng(2)
    gt = square_scene()
    gt[:, 24:] = 255  # an ignored band that touches the square's class
    gt[14:17, 12:15] = 255  # an ignored hole inside the square
    pred = square_scene(dx=1)
    res, _ = run([sample(pred, gt)], tolerances=(1, 3))
    metric = new_metric(tolerances=(1, 3))
    metric.process({}, [sample(pred, gt)])
    for _ in range(3):
        other = pred.copy()
        noise = rng.integers(0, 3, gt.shape)
        other[gt == 255] = noise[gt == 255]
        res2, _ = run([sample(other, gt)], tolerances=(1, 3))
        assert res2 == res
        metric2 = new_metric(tolerances=(1, 3))
        metric2.process({}, [sample(other, gt)])
        assert torch.equal(metric2.results[0], metric.results[0])


def test_ignored_neighbours_and_the_frame_make_no_boundary():
    gt = np.zeros((12, 12), np.int64)
    gt[4:8, 4:8] = 255  # class 0 around an ignored hole, touching the frame
    metric = new_metric(tolerances=(1, ))
    counts = metric.image_counts(torch.from_numpy(gt), torch.from_numpy(gt), 3)
    assert counts.sum() == 0
    res, per_class = run([sample(gt, gt)], tolerances=(1, ))
    assert np.isnan(per_class).all() and math.isnan(res['mBF@1px'])


def test_images_where_a_class_is_absent_do_not_raise_its_score():
    gt = square_scene()
    gt[2:6, 20:30] = 2
    pred = square_scene(dx=2)
    pred[4:8, 20:30] = 2  # 2 px off
    _, base = run([sample(pred, gt)], tolerances=(1, ))
    # Extra images without class 2 in either map: its F must not move.
    extra = [sample(square_scene(dy=k), square_scene(dy=k)) for k in range(3)]
    _, more = run([sample(pred, gt)] + extra, tolerances=(1, ))
    assert base[0, 2] < 1
    assert more[0, 2] == base[0, 2]
    # (the perfect extra images do raise the classes they contain)
    assert more[0, 1] > base[0, 1]


def test_image_average_is_the_mean_of_per_image_scores():
    # Image A: a 10 px square, predicted exactly (F = 1 for classes 0 and 1;
    # 36 boundary pixels of class 1, 40 of class 0). Image B: a 2 px square,
    # predicted as background only (F = 0; 4 and 8 GT boundary pixels).
    # Image C: background only in both maps (no boundary: left out).
    big, small = square_scene(size=10), square_scene(size=2)
    empty = np.zeros_like(big)
    samples = [sample(big, big), sample(empty, small), sample(empty, empty)]
    per_image, _ = run(samples, tolerances=(1, ), average='image')
    assert per_image == {'mBF@1px': 50.0}
    # Summed over the dataset, every boundary pixel weighs the same:
    # P = 1, R = 36 / 40 (class 1) and 40 / 48 (class 0).
    f1, f0 = 2 * 0.9 / 1.9, 2 * (40 / 48) / (1 + 40 / 48)
    dataset, _ = run(samples, tolerances=(1, ))
    assert dataset == {'mBF@1px': round((f1 + f0) / 2 * 100, 2)}
    metric = new_metric(tolerances=(1, ), average='image')
    metric.process({}, samples)
    scores = metric.class_scores(metric.results)
    np.testing.assert_allclose(scores[0, :2], [0.5, 0.5])
    assert np.isnan(scores[0, 2])  # class 2: in no image


def test_image_average_leaves_out_images_without_the_class():
    # The official code scores F = 1 where a class is in neither map; here
    # such images do not count, so adding them changes nothing.
    gt = square_scene()
    pred = square_scene(dx=2)
    base, _ = run([sample(pred, gt)], tolerances=(1, ), average='image')
    other = np.full_like(gt, 2)
    more, _ = run([sample(pred, gt), sample(other, other)], tolerances=(1, ),
                  average='image')
    assert base == more and base['mBF@1px'] < 100


def f_by_hand(matched_pred, total_pred, matched_gt, total_gt):
    """(P, R, F) as exact fractions; None where a class has no boundary."""
    if total_pred == total_gt == 0:
        return None
    p = Fraction(matched_pred, total_pred) if total_pred else Fraction(0)
    r = Fraction(matched_gt, total_gt) if total_gt else Fraction(0)
    return p, r, (2 * p * r / (p + r) if p + r else Fraction(0))


def as_floats(values):
    return np.array([np.nan if v is None else float(v) for v in values])


def test_precision_recall_and_f_from_counts_by_hand():
    # one image, two tolerances, six classes: (matched pred, pred, matched GT, GT)
    counts = np.array([[[1, 1, 1, 2], [1, 2, 1, 1], [1, 2, 1, 2],
                        [0, 0, 0, 3], [0, 4, 0, 0], [0, 0, 0, 0]],
                       [[1, 1, 2, 2], [2, 2, 1, 1], [2, 2, 1, 2],
                        [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]], np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)  # 0 / 0 stays silent
        got = BoundaryFScore.counts_to_scores(counts)
        batched = BoundaryFScore.counts_to_scores(np.stack([counts, counts[::-1]]))
    assert sorted(got) == ['fscore', 'precision', 'recall']
    hand = [[f_by_hand(*c) for c in per_t] for per_t in counts.tolist()]
    for i, name in enumerate(('precision', 'recall', 'fscore')):
        want = np.stack([as_floats(None if h is None else h[i] for h in per_t)
                         for per_t in hand])
        np.testing.assert_allclose(got[name], want, rtol=1e-15, atol=0)
        np.testing.assert_allclose(batched[name], np.stack([want, want[::-1]]),
                                   rtol=1e-15, atol=0)
    # P = R = 1/2 gives F = 1/2 (not 0 because P + R is not above 1)
    assert got['fscore'][0, 2] == 0.5 and got['fscore'][0, 0] == 2 / 3


def test_image_average_per_tolerance_and_class_by_hand():
    # 3 images, 2 tolerances, 3 classes; class 2 has no boundary anywhere
    images = [
        [[[2, 2, 2, 2], [1, 2, 1, 2], [0, 0, 0, 0]], [[2, 2, 2, 2], [2, 2, 2, 2], [0, 0, 0, 0]]],
        [[[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]],
        [[[0, 0, 0, 0], [1, 1, 0, 3], [0, 0, 0, 0]], [[0, 0, 0, 0], [1, 1, 3, 3], [0, 0, 0, 0]]],
    ]
    results = [torch.tensor(c) for c in images]
    per_image = [[[f_by_hand(*c) for c in per_t] for per_t in img] for img in images]
    want_image = np.full((2, 3), np.nan)
    for t in range(2):
        for c in range(3):
            fs = [img[t][c][2] for img in per_image if img[t][c] is not None]
            if fs:
                want_image[t, c] = float(sum(fs) / len(fs))
    np.testing.assert_array_equal(want_image[:, :2], [[0.5, 0.25], [1, 1]])  # by eye
    summed = np.array(images).sum(0)
    want_dataset = np.array([as_floats(None if h is None else h[2]
                                       for h in (f_by_hand(*c) for c in per_t))
                             for per_t in summed.tolist()])
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        for average, want in (('image', want_image), ('dataset', want_dataset)):
            got = new_metric(average=average, tolerances=(1, 2)).class_scores(results)
            assert got.shape == (2, 3)
            np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def table_rows(text):
    """{first column: other columns} of the one per-class table in the log."""
    tables = [m for level, m in text if level == logging.INFO and '|' in m]
    assert len(tables) == 1 and tables[0].startswith('\n+')
    return {cells[1].strip(): [c.strip() for c in cells[2:-1]]
            for cells in (line.split('|') for line in tables[0].splitlines())
            if len(cells) > 2}


def test_per_class_table_and_messages_go_to_the_log():
    # one image, tolerances 1 and 2.5 px: F = 2/3, 1/2 and absent, then 1, 1
    counts = torch.tensor([[[1, 1, 1, 2], [1, 2, 1, 2], [0, 0, 0, 0]],
                           [[1, 1, 1, 1], [2, 2, 2, 2], [0, 0, 0, 0]]])
    for scaled, average in ((False, 'dataset'), (True, 'image')):
        metric = new_metric(tolerances=(1, 2.5), scale_tolerances=scaled, average=average)
        metric.results = [counts]
        text, out = log_records(metric)
        assert out == {'mBF@1px': round((2 / 3 + 1 / 2) / 2 * 100, 2), 'mBF@2.5px': 100.0}
        assert table_rows(text) == {'Class': ['BF@1px', 'BF@2.5px'],
                                    'zero': ['66.67', '100.0'], 'one': ['50.0', '100.0'],
                                    'two': ['nan', 'nan']}
        messages = [m for level, m in text if level == logging.INFO and '|' not in m]
        want = [f'per class boundary F-score (%, averaged per {average}):']
        if scaled:
            want.insert(0, 'boundary F-score tolerances are scaled with the image '
                           'diagonal (given at 1024x2048)')
        assert messages == want
        assert not [m for level, m in text if level >= logging.WARNING]


def test_no_boundary_anywhere_warns_once_and_no_numpy_warning():
    metric = new_metric(tolerances=(1, 3))
    metric.results = [torch.zeros(2, 3, 4, dtype=torch.long)]
    text, out = log_records(metric)  # numpy's RuntimeWarnings raise there
    assert list(out) == ['mBF@1px', 'mBF@3px'] and all(map(math.isnan, out.values()))
    assert [t for t in text if t[0] >= logging.WARNING] == [(
        logging.WARNING, 'BoundaryFScore: no class has a boundary in the ground truth or '
        'the prediction of any image; every mBF is NaN')]


def test_unknown_average_is_rejected():
    with pytest.raises(ValueError, match="average must be 'dataset'"):
        BoundaryFScore(average='class')


def test_messages_name_the_metric_and_the_fix():
    with pytest.raises(ValueError, match=r"^BoundaryFScore\.average must be 'dataset' "
                       r"\(counts summed over the dataset\) or 'image' \(mean of per-image "
                       r"F, as the official Gated-SCNN evaluation\), got 'class'$"):
        BoundaryFScore(average='class')
    with pytest.raises(ValueError, match=r'^BoundaryFScore\.tolerances is empty; give '
                       r'distances in pixels, e\.g\. tolerances=\(3, 5, 9, 12\)$'):
        BoundaryFScore(tolerances=())
    with pytest.raises(ValueError, match=r'^prediction \(4, 5\) and ground truth \(4, 4\) '
                       r'differ in size$'):
        new_metric().process({}, [sample(np.zeros((4, 5), np.int64),
                                         np.zeros((4, 4), np.int64))])


def test_base_metric_arguments_are_passed_on(tmp_path):
    metric = BoundaryFScore(collect_device='gpu', prefix='val')
    assert (metric.collect_device, metric.prefix) == ('gpu', 'val')
    assert BoundaryFScore(collect_dir=str(tmp_path)).collect_dir == str(tmp_path)


def test_batch_at_once_or_in_pieces_gives_the_same_result():
    rng = np.random.default_rng(3)
    samples = []
    for _ in range(5):
        gt = np.kron(rng.integers(0, 3, (6, 6)), np.ones((4, 4), np.int64))
        pred = gt.copy()
        pred[rng.random(gt.shape) < 0.1] = rng.integers(0, 3)
        samples.append(sample(pred, gt))
    whole = new_metric()
    whole.process({}, samples)
    pieces = new_metric()
    for chunk in (samples[:2], samples[2:3], samples[3:]):
        pieces.process({}, chunk)
    assert all(torch.equal(a, b) for a, b in zip(whole.results, pieces.results))
    assert whole.evaluate(5) == pieces.evaluate(5)


def test_works_next_to_iou_metric_in_an_evaluator():
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator([dict(type='IoUMetric', iou_metrics=['mIoU']),
                           dict(type='BoundaryFScore', tolerances=(2, 4))])
    evaluator.dataset_meta = dict(classes=CLASSES)
    gt = square_scene()
    evaluator.process([sample(gt, gt)], {})
    res = evaluator.evaluate(1)
    assert res['mIoU'] == res['mBF@2px'] == res['mBF@4px'] == 100.0


# -------------------------------------------------------------- two ranks

def dist_samples():
    rng = np.random.default_rng(4)
    samples = []
    for i in range(6):
        gt = np.kron(rng.integers(0, 3, (5, 6)), np.ones((4, 4), np.int64))
        gt[:3, :5] = 255
        pred = np.roll(gt, i % 3, axis=1)
        samples.append(sample(pred, gt))
    return samples


def dist_metric(kind):
    if kind == 'BoundaryIoUMetric':
        from mmgscnn.evaluation.metrics import BoundaryIoUMetric
        metric = BoundaryIoUMetric(dilation_ratio=0.05)
        metric.dataset_meta = dict(classes=CLASSES)
        return metric
    return new_metric(tolerances=(1, 2, 5))


def _rank_worker(rank, world_size, init_file, out_file, kind):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size)
    try:
        samples = dist_samples()
        metric = dist_metric(kind)
        # Interleaved, as mmengine's DefaultSampler gives them to the ranks.
        metric.process({}, samples[rank::world_size])
        res = metric.evaluate(len(samples))
        if rank == 0:
            torch.save(res, out_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('kind', ['BoundaryFScore', 'BoundaryIoUMetric'])
def test_two_processes_give_the_single_process_result(tmp_path, kind):
    import torch.multiprocessing as mp
    out_file = str(tmp_path / 'rank0.pt')
    mp.spawn(_rank_worker, args=(2, str(tmp_path / 'init'), out_file, kind), nprocs=2,
             join=True)
    single = dist_metric(kind)
    single.process({}, dist_samples())
    want = single.evaluate(6)
    got = torch.load(out_file)
    assert got == want
    if kind == 'BoundaryFScore':
        assert 0 < want['mBF@1px'] < want['mBF@5px'] <= 100
    else:
        assert 0 < want['mBIoU'] < 100

