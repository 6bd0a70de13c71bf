"""mmgscnn.cli.test (tools/test.py): the metrics of a checkpoint, the
pictures of --show-dir, test-time augmentation of a GSCNN model (--tta), and
a missing checkpoint."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmgscnn.cli import test as cli_test
from mmgscnn.cli import train as cli_train

from helpers import trained_tiny, write_camvid_layout, write_tool_config


def test_test_tool_reports_the_metrics_and_draws(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    config = write_tool_config(tmp_path / 'tiny.py', data_root)
    work = str(tmp_path / 'work')
    cli_train.main([config, '--work-dir', work])
    # (a fresh visualizer name: mmengine keeps one instance per name per process)
    metrics = cli_test.main([config, osp.join(work, 'iter_2.pth'), '--work-dir', work,
                             '--show-dir', 'vis', '--cfg-options', 'visualizer.name=vis_test'])
    assert {'mIoU', 'mBF@1px', 'mBF@3px'} <= set(metrics)
    pictures = list((tmp_path / 'work').glob('**/vis/**/*.png'))
    assert pictures, 'the --show-dir pictures were not written'

    with pytest.raises(SystemExit, match='checkpoint'):
        cli_test.main([config, str(tmp_path / 'missing.pth')])


def test_test_time_augmentation_with_gscnn_smoke(tmp_path):
    """tools/test.py --tta runs a GSCNN model through mmseg's TTA pipeline
    (smoke test: the merged values are pinned by test_gscnn_tta_values)."""
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
    metrics = cli_test.main([config, ckpt, '--work-dir', str(tmp_path / 'tta'), '--tta'])
    assert 0 <= metrics['mIoU'] <= 100
    assert torch.isfinite(torch.tensor(metrics['mIoU']))
