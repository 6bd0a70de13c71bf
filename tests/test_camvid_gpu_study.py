"""The CamVid GPU study's CPU side (configs/studies/camvid-gpu-180x240.py):
the 180x240 configs on a downscaled copy, and the study's recipe run end to
end at tiny sizes."""
import json
import os.path as osp
import re
import subprocess
import sys

import numpy as np
from mmengine.config import Config
from mmseg.registry import DATASETS, METRICS, MODELS

from helpers import write_camvid
from mmgscnn.datasets import CamVidDataset
from mmgscnn.datasets.camvid_downscale import downscale_camvid
from mmgscnn.experiments.accuracy_study import load_recipe

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPE = osp.join(REPO, 'configs', 'studies', 'camvid-gpu-180x240.py')
CELL = re.compile(r'^-?\d+\.\d\d \(-?\d+\.\d\d\.\.-?\d+\.\d\d\)$')


# ------------------------------------------------------------ configs

def test_gpu_recipe_and_configs(tmp_path, monkeypatch):
    recipe = load_recipe(RECIPE)
    assert recipe['seeds'] == [0, 1] and recipe['amp'] is True
    assert recipe['data_root'] == 'data/camvid-180x240'
    assert recipe['out'] == 'docs/benchmarks/camvid-gpu.json'
    labels = write_camvid(str(tmp_path / 'src'), h=32, w=48, splits=(('val', 1), ))
    downscale_camvid(str(tmp_path / 'src'), str(tmp_path / 'small'), (16, 24), ['val'])
    monkeypatch.setenv('CAMVID_ROOT', str(tmp_path / 'small'))
    built = {}
    for name, path in zip(recipe['names'], recipe['configs']):
        cfg = Config.fromfile(osp.join(REPO, path))
        loader = cfg.train_dataloader
        assert loader.batch_size == 16 and loader.dataset.img_suffix == '.jpg'
        assert loader.dataset.data_root == str(tmp_path / 'small')
        resize, crop = loader.dataset.pipeline[2], loader.dataset.pipeline[3]
        assert resize.scale == (240, 180) and resize.ratio_range == (0.5, 2.0)
        assert crop.crop_size == (180, 240) == cfg.model.data_preprocessor.size
        assert cfg.train_cfg.max_iters == 2000 == cfg.param_scheduler[0].end
        assert cfg.param_scheduler[0].type == 'PolyLR' and cfg.model.pretrained is None
        assert cfg.test_dataloader.dataset.img_suffix == '.jpg'
        assert [p.type for p in cfg.test_dataloader.dataset.pipeline] == [
            'LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']  # no resize
        built[name] = MODELS.build(cfg.model)
    assert type(built['gscnn-pspnet']).__name__ == 'GSCNNEncoderDecoder'
    assert type(built['pspnet'].decode_head).__name__ == 'PSPHead'
    assert type(built['gscnn-deeplabv3plus'].decode_head.decoder).__name__ == \
        'DepthwiseSeparableASPPHead'
    assert sum(p.numel() for p in built['gscnn-pspnet'].parameters()) > \
        sum(p.numel() for p in built['pspnet'].parameters())
    metrics = [METRICS.build(m) for m in cfg.test_evaluator]
    assert metrics[1].tolerances == (1, 2, 3, 5) and not metrics[1].scale_tolerances
    assert type(metrics[2]).__name__ == 'BoundaryIoUMetric' and metrics[2].dilation_ratio == 0.02
    assert metrics[3].crop_boxes(180, 240)[-1] == (70, 92, 105, 135)  # crop factor 400
    assert metrics[4].crop_boxes(180, 240) == [(0, 180, 0, 240)]  # whole image
    val = DATASETS.build(cfg.test_dataloader.dataset)
    assert isinstance(val, CamVidDataset) and len(val) == 1
    gt = val[0]['data_samples'].gt_sem_seg.data[0].numpy()
    raw = next(iter(labels.values()))[::2, ::2]
    np.testing.assert_array_equal(gt, np.where(raw == 11, 255, raw))


# --------------------------------------------------------- end to end

TINY = ['train_cfg.max_iters=2', 'param_scheduler.0.end=2', 'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'train_dataloader.dataset.pipeline.2.scale=(64,48)',
        'train_dataloader.dataset.pipeline.3.crop_size=(48,64)',
        'model.data_preprocessor.size=(48,64)']


def test_gpu_study_at_tiny_sizes(tmp_path):
    """The recommended GPU command with CPU sizes: the data preparation on a
    tiny CamVid copy, then the recipe for 2 iterations, 2 runs at a time
    with a loader worker each, fp32; every cell of the table is filled."""
    write_camvid(str(tmp_path / 'camvid'), h=96, w=128, splits=(('train', 4), ('val', 2)))
    data = tmp_path / 'data' / 'camvid-48x64'
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'downscale_camvid.py'),
                           '--src', str(tmp_path / 'camvid'), '--out-dir', str(data),
                           '--size', '48', '64'], check=True, capture_output=True, text=True)
    assert 'wrote 4 train, 2 val images of 48x64' in done.stdout
    out, md = tmp_path / 'camvid-gpu.json', tmp_path / 'camvid-gpu.md'
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'accuracy_study.py'),
                    '--recipe', RECIPE, '--data-root', str(data), '--no-amp', '--seeds', '0',
                    '--jobs', '2', '--num-workers', '1', '--work-dir', str(tmp_path / 'work'),
                    '--out', str(out), '--markdown', str(md), '--train-only-options', *TINY],
                   check=True, cwd=REPO, capture_output=True)
    report = json.loads(out.read_text())
    names = ['deeplabv3plus', 'gscnn-deeplabv3plus', 'pspnet', 'gscnn-pspnet']
    assert list(report['configs']) == names and report['options']['amp'] is False
    for key in ('date', 'device', 'torch', 'command'):
        assert report[key], key
    classes = CamVidDataset.METAINFO['classes']
    want = {'mIoU', 'mBF@1px', 'mBF@2px', 'mBF@3px', 'mBF@5px',
            *(f'mIoU@crop{c}' for c in (0, 100, 200, 300, 400)),
            *(f'whole/IoU.{c}@crop0' for c in classes)}
    for name in names:
        assert report['runs'][name]['0']['status'] == 'finished'
        assert want <= set(report['per_seed'][name]['0'])
        log = (tmp_path / 'work' / name / 'seed0' / 'run.log').read_text()
        assert 'train_dataloader.num_workers=1' in log and 'val_cfg=None' in log
    text = md.read_text()
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.strip('|').split('|')[1:]]
            for line in text.splitlines() if line.startswith('| ')
            and not line.startswith(('| metric', '| ---'))}
    assert want <= set(rows)
    assert all(len(cells) == 4 and all(CELL.match(c) for c in cells)
               for cells in rows.values()), rows
    assert 'Without results' not in text
