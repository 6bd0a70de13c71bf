"""The main job's script (make demo) end to end, on a reduced setting."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import pytest

from mmgscnn.experiments.demo import results_table

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ROWS = ('| mIoU (%) |', '| boundary F @1px (%) |', '| boundary F @5px (%) |',
        '| IoU pole (%) |', '| IoU pedestrian (%) |', '| thin-class mean IoU (%) |',
        '| train time per iteration (s) |', '| peak memory, training process (MiB) |',
        '| parameters |')


def test_demo_end_to_end_reduced(tmp_path):
    out, data = tmp_path / 'out', tmp_path / 'data'
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--out-dir', str(out),
                    '--data-dir', str(data), '--iters', '2', '--batch-size', '2',
                    '--pictures', '1', '--num-train', '6', '--num-val', '2'],
                   check=True, cwd=str(tmp_path))
    assert (data / 'meta.json').is_file()  # the data was written because it was missing
    table = (out / 'results.md').read_text()
    for row in ROWS:
        assert row in table, row
    results = json.loads((out / 'results.json').read_text())
    assert results['gscnn']['params'] > results['baseline']['params'] > 0
    widths = {}
    for name in ('baseline', 'gscnn'):
        assert results[name]['sec_per_iter'] > 0 and results[name]['peak_rss'] > 0
        metrics = results[name]['metrics']
        assert 0 <= metrics['mIoU'] <= 100
        # per-class IoU of the whole image, next to the crops around the vanishing point
        assert 'whole/IoU.wire@crop0' in metrics and 'mIoU@crop400' in metrics
        assert metrics['whole/mIoU@crop0'] == pytest.approx(metrics['mIoU'], abs=0.01)
        pictures = list((out / 'pictures' / name).glob('*.png'))
        assert len(pictures) == 1, pictures
        widths[name] = cv2.imread(str(pictures[0])).shape[1]
    # tools/infer.py drew image | prediction, and for GSCNN the boundary map too
    assert widths['gscnn'] > widths['baseline']


def fake_result(config, **ious):
    metrics = {'mIoU': 50.0, 'mBF@1px': 10.0, 'mBF@3px': 20.0, 'mBIoU': 40.0,
               'mIoU@crop0': 1.0}
    metrics.update({f'whole/IoU.{c}@crop0': v for c, v in ious.items()})
    metrics.update({f'IoU.{c}@crop0': 99.0 for c in ious})  # crop-factor keys: not used
    return dict(config=config, metrics=metrics, sec_per_iter=0.5, peak_rss=2**30, params=1000)


def test_table_reads_whole_image_class_iou():
    thin = dict(pole=10.0, sign=20.0, fence=30.0, wire=40.0, pedestrian=50.0)
    results = dict(baseline=fake_result('a.py', **thin),
                   gscnn=fake_result('b.py', **{c: v + 1 for c, v in thin.items()}))
    lines = results_table(results).splitlines()
    assert lines[0] == '| | baseline | GSCNN | GSCNN - baseline |'
    assert '| boundary F @3px (%) | 20.00 | 20.00 | +0.00 |' in lines
    assert lines.index('| boundary IoU (%) | 40.00 | 40.00 | +0.00 |') == \
        lines.index('| boundary F @3px (%) | 20.00 | 20.00 | +0.00 |') + 1
    assert '| IoU wire (%) | 40.00 | 41.00 | +1.00 |' in lines
    assert '| thin-class mean IoU (%) | 30.00 | 31.00 | +1.00 |' in lines
    assert '| peak memory, training process (MiB) | 1024 | 1024 | x1.00 |' in lines
    assert lines[-1] == '| parameters | 1,000 | 1,000 | x1.00 |'
    del results['gscnn']['metrics']['whole/IoU.sign@crop0']
    with pytest.raises(SystemExit, match=r"b.py reported no whole/IoU.sign@crop0.*'whole'"):
        results_table(results)
