"""tools/eval_boundary.py (mmgscnn.cli.eval_boundary): hand-checked scores of
tiny PNG folders, files matched by relative path, missing / mismatched /
RGB files named with exit status 1, --reduce-zero-label, --crop-factors,
--workers, JSON and Markdown output."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmgscnn.cli.eval_boundary import main
from mmgscnn.evaluation.metrics import CropIoUMetric


def square(shift=0, value=1, background=0):
    """10x10: ``value`` on rows 2..7, cols 2+shift..7+shift."""
    label = np.full((10, 10), background, np.uint8)
    label[2:8, 2 + shift:8 + shift] = value
    return label


def save(path, label):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(path)


@pytest.fixture
def folders(tmp_path):
    save(tmp_path / 'gt' / 'city' / 'a.png', square())
    save(tmp_path / 'pred' / 'city' / 'a.png', square(shift=1))
    save(tmp_path / 'pred' / 'extra.png', square())  # no ground truth: left out
    return tmp_path


def run(tmp_path, *extra, capsys=None):
    out = tmp_path / 'r.json'
    code = main(['--pred', str(tmp_path / 'pred'), '--gt', str(tmp_path / 'gt'),
                 '--num-classes', '2', '--classes', 'bg', 'box', '--tolerances', '1', '2',
                 '--dilation-ratio', '0.1', '--out', str(out),
                 '--markdown', str(tmp_path / 'r.md'), *extra])
    return code, json.loads(out.read_text())


def test_scores_of_a_square_shifted_by_one_pixel(folders):
    code, report = run(folders)
    assert code == 0 and report['images'] == 1 and report['not_scored'] == []
    r = report['results']
    # IoU: box 30 / 42, background 58 / 70.  Boundary IoU (d = 1): box rings
    # share 10 of 30 pixels, background bands 50 of 70 (tests/test_boundary_iou.py).
    assert r['mIoU'] == pytest.approx(round((30 / 42 + 58 / 70) / 2 * 100, 2))
    assert r['mBIoU'] == pytest.approx(round((10 / 30 + 50 / 70) / 2 * 100, 2))
    # Every boundary pixel is 1 px from the other map's: F = 1 at both tolerances.
    assert r['mBF@1px'] == r['mBF@2px'] == 100.0
    assert report['per_class']['BIoU'] == {'bg': round(5000 / 70, 2), 'box': 33.33}
    assert report['per_class']['IoU']['box'] == round(3000 / 42, 2)
    md = (folders / 'r.md').read_text()
    assert '| mBIoU | 52.38 |' in md and '| box | 71.43 | 100.00 | 100.00 | 33.33 |' in md


def test_missing_and_mismatched_files_are_named_and_the_rest_scored(folders, capsys):
    save(folders / 'gt' / 'b.png', square())
    save(folders / 'pred' / 'b.png', square()[:9])
    save(folders / 'gt' / 'c.png', square())
    save(folders / 'gt' / 'd.png', square())
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folders / 'pred' / 'd.png')
    with pytest.raises(SystemExit) as exc:
        run(folders)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert 'b.png is 9x10, ground truth 10x10' in err
    assert f'c.png: no prediction {folders / "pred" / "c.png"}' in err
    assert 'd.png: a RGB image, not a label map' in err
    assert '3 ground-truth file(s) not scored' in err
    report = json.loads((folders / 'r.json').read_text())
    assert report['images'] == 1 and len(report['not_scored']) == 3
    assert report['results']['mBIoU'] == pytest.approx(52.38)  # a.png still scored


def test_reduce_zero_label_workers_and_crop_factors(tmp_path):
    # Ground truth stored with 0 = unlabelled and classes shifted by one.
    save(tmp_path / 'gt' / 'a.png', square(value=2, background=1))
    gt = square(value=2, background=1)
    gt[0, :] = 0
    save(tmp_path / 'gt' / 'b.png', gt)
    for name in ('a', 'b'):
        save(tmp_path / 'pred' / f'{name}.png', square(shift=1))
    code, one = run(tmp_path, '--reduce-zero-label', '--crop-factors', '0', '100')
    assert code == 0
    code, two = run(tmp_path, '--reduce-zero-label', '--crop-factors', '0', '100',
                    '--workers', '2')
    assert one['results'] == two['results']
    # b.png's first row is ignored: the images differ only there
    crop = CropIoUMetric(crop_factors=(0, 100))
    crop.dataset_meta = dict(classes=('bg', 'box'))
    reduced = square().astype(np.int64)
    reduced_b = reduced.copy()
    reduced_b[0, :] = 255
    for g in (reduced, reduced_b):
        crop.process({}, [dict(pred_sem_seg=dict(data=torch.from_numpy(
            square(shift=1).astype(np.int64))[None]), gt_sem_seg=dict(data=torch.from_numpy(g)[None]))])
    want = crop.evaluate(2)
    assert {k: one['results'][k] for k in want} == want
    assert one['results']['mBIoU'] < 52.38 < 100  # row 0 ignored changes the bands


def test_bad_options_are_refused(folders, capsys):
    with pytest.raises(SystemExit):
        main(['--pred', str(folders / 'pred'), '--gt', str(folders / 'gt'),
              '--num-classes', '2', '--classes', 'one'])
    assert '--classes gives 1 names for --num-classes 2' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--pred', str(folders / 'nope'), '--gt', str(folders / 'gt'),
              '--num-classes', '2'])
    assert 'is not a folder' in capsys.readouterr().err


def test_ground_truth_outside_the_classes_stops_naming_the_file(folders):
    save(folders / 'gt' / 'city' / 'a.png', square(value=7))
    with pytest.raises(SystemExit, match=r'eval_boundary.py: '
                       r'BoundaryFScore: 1 ground-truth label map\(s\) have values outside '
                       r'the 2 classes .*city/a.png \(36 px\)'):
        run(folders)
