"""The main job's script (make demo) end to end, on a reduced setting."""
import importlib.util
import json
import os.path as osp

import cv2

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_demo_end_to_end_reduced(tmp_path):
    spec = importlib.util.spec_from_file_location('demo', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    out, data = tmp_path / 'out', tmp_path / 'data'
    results = demo.main(['--out-dir', str(out), '--data-dir', str(data), '--iters', '2',
                         '--batch-size', '2', '--pictures', '1', '--num-train', '6',
                         '--num-val', '2'])
    assert (data / 'meta.json').is_file()  # the data was written because it was missing
    table = (out / 'results.md').read_text()
    for row in ('| mIoU (%) |', '| boundary F @1px (%) |', '| boundary F @5px (%) |',
                '| IoU pole (%) |', '| thin-class mean IoU (%) |',
                '| train time per iteration (s) |', '| peak memory, training process (MiB) |',
                '| parameters |'):
        assert row in table, row
    saved = json.loads((out / 'results.json').read_text())
    assert saved['gscnn']['params'] > saved['baseline']['params'] > 0
    for name in ('baseline', 'gscnn'):
        assert results[name]['sec_per_iter'] > 0 and results[name]['peak_rss'] > 0
        assert 0 <= results[name]['metrics']['mIoU'] <= 100
        pictures = list((out / 'pictures' / name).glob('*.png'))
        assert len(pictures) == 1
        image = cv2.imread(str(pictures[0]))
        panels = 3 if name == 'gscnn' else 2  # image | prediction (| boundary map)
        assert image.shape[1] == panels * 160 and image.shape[0] == 120
