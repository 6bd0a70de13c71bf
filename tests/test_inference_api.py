"""A GSCNN model through mmseg's own inference paths: MMSegInferencer and
test-time augmentation (SegTTAModel through tools/test.py --tta)."""
import importlib.util
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import TINY_CLASSES, draw_scene, tiny_runner_config, write_camvid_layout

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def trained_tiny(tmp_path):
    """Train the tiny GSCNN for 2 iterations; return (config file, checkpoint)."""
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    cfg = tiny_runner_config(tmp_path / 'work', data_root, max_iters=2, interval=2)
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.visualizer = dict(type='SegBoundaryVisualizer', name=f'vis_{tmp_path.name}',
                          vis_backends=[dict(type='LocalVisBackend')])
    Runner.from_cfg(cfg).train()
    cfg.pop('work_dir')
    cfg.pop('experiment_name')
    path = str(tmp_path / 'tiny.py')
    Config(cfg.to_dict()).dump(path)
    return path, str(tmp_path / 'work' / 'iter_2.pth'), data_root


def test_mmseg_inferencer_runs_a_gscnn_model(tmp_path):
    from mmseg.apis import MMSegInferencer
    config, ckpt, _ = trained_tiny(tmp_path)
    inferencer = MMSegInferencer(model=config, weights=ckpt, device='cpu')
    image, _ = draw_scene(np.random.default_rng(5), 45, 61)
    result = inferencer(image, return_datasamples=True)
    assert result.pred_sem_seg.shape == (45, 61)
    assert result.pred_boundary.shape == (45, 61)
    assert int(result.pred_sem_seg.data.max()) < len(TINY_CLASSES)
    plain = inferencer(image)  # the dict form users get by default
    assert np.asarray(plain['predictions']).shape == (45, 61)


def test_test_time_augmentation_with_gscnn(tmp_path):
    config, ckpt, _ = trained_tiny(tmp_path)
    cfg = Config.fromfile(config)
    cfg.tta_model = dict(type='SegTTAModel')
    cfg.tta_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.75, 1.0, 1.25)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]
    cfg.dump(config)
    spec = importlib.util.spec_from_file_location('test_tool', osp.join(REPO, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    metrics = tool.main([config, ckpt, '--work-dir', str(tmp_path / 'tta'), '--tta'])
    assert 0 <= metrics['mIoU'] <= 100
    assert torch.isfinite(torch.tensor(metrics['mIoU']))
