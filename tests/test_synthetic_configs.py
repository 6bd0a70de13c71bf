"""The SyntheticStreet configs (configs/*/*_synthetic-96x128.py): they build,
match the data, train two iterations and report every metric."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import DATASETS, METRICS, MODELS

from mmgscnn.datasets.synthetic import CLASSES

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = [
    osp.join(REPO, 'configs', 'deeplabv3plus',
             'deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py'),
    osp.join(REPO, 'configs', 'gscnn',
             'gscnn-deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py')]
H, W = 120, 160  # the size of the generated data


def test_configs_build_and_match_the_data(synthetic_data, monkeypatch):
    root, _ = synthetic_data
    monkeypatch.setenv('SYNTHETIC_ROOT', root)
    names = [osp.basename(p) for p in CONFIGS]
    assert names == ['deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py',
                     'gscnn-deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py']
    base, gscnn = (Config.fromfile(p) for p in CONFIGS)
    # The README conversion: the GSCNN head wraps the baseline's head unchanged.
    assert gscnn.model.type == 'GSCNNEncoderDecoder'
    assert gscnn.model.decode_head == base.model.decode_head
    assert gscnn.model.shape_head.shape_stream.in_channels == [32, 64, 128, 256]
    assert gscnn.model.backbone == base.model.backbone
    for cfg in (base, gscnn):
        assert cfg.train_dataloader.dataset.data_root == root
        assert cfg.train_dataloader.dataset.type == 'SyntheticStreetDataset'
        assert cfg.visualizer.type == 'SegBoundaryVisualizer'
        assert cfg.param_scheduler[0].end == cfg.train_cfg.max_iters
        model = MODELS.build(cfg.model)
        head = model.decode_head.decoder if cfg is gscnn else model.decode_head
        assert head.num_classes == len(CLASSES) == model.auxiliary_head.num_classes
        assert cfg.model.pretrained is None  # from scratch, no download
    # shape stream levels = the backbone's channels
    model = MODELS.build(gscnn.model)
    feats = model.backbone(torch.zeros(1, 3, *gscnn.crop_size))
    assert list(gscnn.model.shape_head.shape_stream.in_channels) == [f.shape[1] for f in feats]
    metrics = [METRICS.build(m) for m in base.val_evaluator]
    assert [type(m).__name__ for m in metrics] == ['IoUMetric', 'BoundaryFScore',
                                                   'BoundaryIoUMetric', 'CropIoUMetric',
                                                   'CropIoUMetric']
    assert metrics[3].crop_boxes(H, W)[-1] == (47, 61, 70, 90)  # crop factor 400
    assert metrics[4].crop_boxes(H, W) == [(0, H, 0, W)]  # per-class IoU, whole image
    train = DATASETS.build(base.train_dataloader.dataset)
    inputs = train[0]['inputs']
    assert inputs.shape[0] == 3 and inputs.shape[1] <= base.crop_size[0] \
        and inputs.shape[2] <= base.crop_size[1]


@pytest.mark.parametrize('index', [0, 1], ids=['baseline', 'gscnn'])
def test_config_trains_two_iterations_and_evaluates(synthetic_data, tmp_path, monkeypatch, index):
    root, _ = synthetic_data
    monkeypatch.setenv('SYNTHETIC_ROOT', root)
    cfg = Config.fromfile(CONFIGS[index])
    cfg.work_dir = str(tmp_path)
    cfg.log_level = 'WARNING'
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.val_dataloader.dataset.indices = 2  # two val images
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    keys = {'mIoU', 'mBF@1px', 'mBF@2px', 'mBF@3px', 'mBF@5px', 'mBIoU', 'mIoU@crop0',
            'mIoU@crop400', 'whole/mIoU@crop0'} | {f'whole/IoU.{c}@crop0' for c in CLASSES}
    assert keys <= set(metrics), sorted(metrics)
    # the whole image: the same counts as IoUMetric's
    assert metrics['whole/mIoU@crop0'] == pytest.approx(metrics['mIoU'], abs=0.01)
    assert np.isfinite(metrics['mIoU']) and np.isfinite(metrics['mIoU@crop400'])
    assert osp.isfile(osp.join(str(tmp_path), 'iter_2.pth'))
