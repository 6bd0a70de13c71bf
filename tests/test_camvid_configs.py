"""The CamVid configs (configs/*/*_camvid-360x480.py and
configs/_base_/datasets/camvid.py): they load and build, and the data
config's metrics and visualizer run in a Runner's validation."""
import glob
import os.path as osp

import cv2
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import DATASETS, METRICS, MODELS

from helpers import tiny_model, tiny_runner_config, write_camvid

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CAMVID_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '*', '*_camvid-360x480.py')))


def test_camvid_configs_load_and_build(tmp_path, monkeypatch):
    write_camvid(str(tmp_path))
    monkeypatch.setenv('CAMVID_ROOT', str(tmp_path))
    names = sorted(osp.basename(p) for p in CAMVID_CONFIGS)
    assert names == sorted(f'{g}{m}_r18-d8{p}_1xb8-20k_camvid-360x480.py'
                           for g in ('', 'gscnn-', 'dual-task-')
                           for m in ('deeplabv3plus', 'pspnet') for p in ('', '-in1k-pre')
                           if not (g == 'dual-task-' and p))
    for path in CAMVID_CONFIGS:
        cfg = Config.fromfile(path)
        name = osp.basename(path)
        assert cfg.train_dataloader.dataset.data_root == str(tmp_path)
        assert cfg.visualizer.type == 'SegBoundaryVisualizer'
        want = 'open-mmlab://resnet18_v1c' if 'in1k-pre' in name else None
        assert cfg.model.pretrained == want, name
        if 'in1k-pre' in name:
            continue  # the same model; building would not load the weights anyway
        model = MODELS.build(cfg.model)
        head = model.decode_head
        if name.startswith('gscnn-'):
            assert type(model).__name__ == 'GSCNNEncoderDecoder'
            head = head.decoder
        assert type(head).__name__ == ('DepthwiseSeparableASPPHead' if 'deeplab' in name
                                       else 'PSPHead')
        assert head.num_classes == 11 and model.auxiliary_head.num_classes == 11
        assert model.backbone.depth == 18
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    # The evaluators and datasets of the (shared) data config build and run.
    metrics = [METRICS.build(m) for m in cfg.val_evaluator]
    assert [type(m).__name__ for m in metrics] == ['IoUMetric', 'BoundaryFScore',
                                                   'BoundaryIoUMetric', 'CropIoUMetric',
                                                   'CropIoUMetric']
    assert metrics[3].crop_boxes(360, 480)[-1] == (141, 184, 211, 269)  # crop factor 400
    assert metrics[4].crop_boxes(360, 480) == [(0, 360, 0, 480)]  # per-class, whole image
    assert metrics[4].class_keys and metrics[4].prefix == 'whole'
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 2 and val[0]['data_samples'].gt_sem_seg.data.max() == 255
    train = DATASETS.build(cfg.train_dataloader.dataset)
    inputs = train[0]['inputs']
    assert inputs.shape[0] == 3 and inputs.shape[1] <= 360 and inputs.shape[2] <= 480


def test_validation_with_camvid_metrics_and_pictures(tmp_path):
    """A tiny GSCNN validated by the Runner on CamVid data with the config's
    three metrics and the visualization hook drawing the boundary panel."""
    write_camvid(str(tmp_path / 'data'), h=24, w=32)
    cfg = tiny_runner_config(tmp_path / 'work', str(tmp_path / 'data'),
                             model=tiny_model(num_classes=11))
    cfg.val_dataloader.dataset = dict(
        type='CamVidDataset', data_root=str(tmp_path / 'data'),
        data_prefix=dict(img_path='val', seg_map_path='valannot'),
        pipeline=cfg.val_dataloader.dataset.pipeline)
    data_cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'camvid.py'))
    cfg.val_evaluator = data_cfg.val_evaluator
    # a name of its own: mmengine keeps one visualizer (and its save_dir) per name
    # per process, so an earlier test's 'visualizer' would take our pictures
    cfg.visualizer = dict(data_cfg.visualizer, name=f'vis_{tmp_path.name}')
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True,
                                           interval=1)
    metrics = Runner.from_cfg(cfg).val()
    for key in ('mIoU', 'mBF@1px', 'mBF@5px', 'mBIoU', 'mIoU@crop0', 'mIoU@crop400',
                'whole/IoU.pole@crop0'):
        assert key in metrics, key
    pictures = glob.glob(str(tmp_path / 'work' / '**' / 'val_val_*.png'), recursive=True)
    assert len(pictures) == 2
    # image | ground truth | prediction | boundary map, 32 px upscaled to 480 px panels
    assert cv2.imread(pictures[0]).shape[1] >= 4 * 480
