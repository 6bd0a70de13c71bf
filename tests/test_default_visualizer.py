"""mmgscnn.visualization.default_visualizer: a config converted from mmseg
(mmseg's default SegLocalVisualizer) draws the boundary picture when the
model has a shape stream; any other choice is kept."""
import glob
import os.path as osp
import uuid

import cv2
from mmengine.config import Config

from helpers import write_camvid_layout, write_tool_config
from mmgscnn.cli import test as cli_test
from mmgscnn.cli import train as cli_train
from mmgscnn.utils.config import load_config
from mmgscnn.visualization import MIN_PANEL_WIDTH
from mmgscnn.visualization.default_visualizer import use_boundary_visualizer

MMSEG_CONFIG = 'mmseg::deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py'


def write_converted(path, gscnn=True, visualizer=None):
    """An mmseg config converted as the user guide says (``gscnn``), or not."""
    lines = [f'_base_ = [{MMSEG_CONFIG!r}]',
             "custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)"]
    if gscnn:
        lines.append("model = dict(type='GSCNNEncoderDecoder', shape_head=dict("
                     'shape_stream=dict(in_channels=[64, 128, 256, 512])))')
    if visualizer:
        lines.append(f'visualizer = dict(type={visualizer!r}, name="visualizer")')
    path.write_text('\n'.join(lines) + '\n')
    return load_config(str(path))


def test_converted_mmseg_config_gets_the_boundary_visualizer(tmp_path):
    cfg = write_converted(tmp_path / 'gscnn.py')
    assert cfg.visualizer.type == 'SegLocalVisualizer'   # from mmseg's default runtime
    backends = cfg.visualizer.vis_backends
    assert use_boundary_visualizer(cfg)
    assert cfg.visualizer.type == 'SegBoundaryVisualizer'
    assert cfg.visualizer.vis_backends == backends and cfg.visualizer.name == 'visualizer'
    # TTA-wrapped model: still a shape stream
    cfg = write_converted(tmp_path / 'gscnn_tta.py')
    cfg.model = dict(type='GSCNNTTAModel', module=cfg.model)
    assert use_boundary_visualizer(cfg)


def test_plain_models_and_chosen_visualizers_are_kept(tmp_path):
    cfg = write_converted(tmp_path / 'plain.py', gscnn=False)
    assert not use_boundary_visualizer(cfg) and cfg.visualizer.type == 'SegLocalVisualizer'
    cfg = write_converted(tmp_path / 'own.py', visualizer='MyVisualizer')
    assert not use_boundary_visualizer(cfg) and cfg.visualizer.type == 'MyVisualizer'


def test_show_dir_draws_four_panels_with_mmseg_default_visualizer(tmp_path):
    data = write_camvid_layout(str(tmp_path / 'data'), n_train=2, n_val=1)
    cfg = Config.fromfile(write_tool_config(tmp_path / 'tiny.py', data))
    runtime = Config.fromfile(osp.join(osp.dirname(__import__('mmseg').__file__), '.mim',
                                       'configs', '_base_', 'default_runtime.py'))
    cfg.visualizer = runtime.visualizer            # mmseg's SegLocalVisualizer
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    work = str(tmp_path / 'work')
    # fresh visualizer names: mmengine keeps one instance (and save_dir) per name
    cli_train.main([config, '--work-dir', work, '--cfg-options',
                    f'visualizer.name=vis_{uuid.uuid4().hex[:8]}'])
    cli_test.main([config, osp.join(work, 'iter_2.pth'), '--work-dir', work,
                   '--show-dir', 'vis', '--cfg-options',
                   f'visualizer.name=vis_{uuid.uuid4().hex[:8]}'])
    pictures = glob.glob(osp.join(work, '**', 'vis', '**', '*.png'), recursive=True)
    assert len(pictures) == 1
    # image | ground truth | prediction | boundary map, each upscaled to >= 480 px
    # (mmseg's visualizer: two 64 px panels)
    assert cv2.imread(pictures[0]).shape[1] >= 4 * MIN_PANEL_WIDTH
