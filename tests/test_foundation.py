"""Package, registries, configs with custom_imports, Runner checkpoint/resume."""
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from helpers import tiny_runner_config, write_camvid_layout

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_import_registers_modules():
    import mmgscnn
    from mmseg.registry import MODELS
    from mmgscnn.models import (BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss,
                                GatedShapeHead, GatedSpatialConv, GSCNNEncoderDecoder,
                                ShapeStream)
    for cls in (GatedShapeHead, GSCNNEncoderDecoder, ShapeStream, GatedSpatialConv,
                BoundaryBCELoss, BoundaryAttentionLoss, DualTaskLoss):
        assert MODELS.get(cls.__name__) is cls, cls.__name__
    assert mmgscnn.__version__


def test_config_with_custom_imports_and_mmseg_base_builds(tmp_path):
    """A fresh interpreter that never imports mmgscnn itself: the config's
    custom_imports must register the plug-in, and mmseg:: must resolve."""
    # A plain R18 DeepLabV3+ derived from mmseg's config (the user's config) ...
    (tmp_path / 'plain_r18.py').write_text(textwrap.dedent('''
        _base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py']
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            pretrained=None,
            backbone=dict(depth=18, norm_cfg=norm_cfg),
            decode_head=dict(in_channels=512, c1_in_channels=64, channels=32,
                             norm_cfg=norm_cfg),
            auxiliary_head=dict(in_channels=256, norm_cfg=norm_cfg))
    '''))
    # ... and its GSCNN version: the lines the README tells users to add.
    cfg_file = tmp_path / 'gscnn_r18.py'
    cfg_file.write_text(textwrap.dedent('''
        _base_ = ['./plain_r18.py']
        custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
        model = dict(type='GSCNNEncoderDecoder',
                     shape_head=dict(shape_stream=dict(in_channels=[64, 128, 256, 512])))
    '''))
    script = textwrap.dedent(f'''
        import sys
        from mmengine.config import Config
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        assert 'mmgscnn' not in sys.modules
        cfg = Config.fromfile({str(cfg_file)!r})
        assert 'mmgscnn' in sys.modules
        register_all_modules()
        model = MODELS.build(cfg.model)
        print(type(model).__name__, type(model.decode_head).__name__,
              type(model.decode_head.decoder).__name__)
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         cwd=str(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-3:] == ['GSCNNEncoderDecoder', 'GatedShapeHead',
                                       'DepthwiseSeparableASPPHead']


def test_runner_trains_saves_and_resumes(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    work_dir = tmp_path / 'work'
    runner = Runner.from_cfg(tiny_runner_config(work_dir, data_root, max_iters=4,
                                                interval=2, val=False))
    runner.train()
    ckpt = work_dir / 'iter_4.pth'
    assert ckpt.is_file() and (work_dir / 'iter_2.pth').is_file()
    saved = _load_checkpoint(str(ckpt), map_location='cpu')  # weights_only load
    assert saved['meta']['iter'] == 4
    saved_state = saved['optimizer']['state']
    assert saved_state, 'SGD with momentum keeps a state per parameter'

    cfg = tiny_runner_config(work_dir, data_root, max_iters=6, interval=2, val=False)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.load_or_resume()
    assert resumed.iter == 4
    state = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert state.keys() == saved_state.keys()
    for k in state:
        assert torch.equal(state[k]['momentum_buffer'], saved_state[k]['momentum_buffer'])
    params = dict(resumed.model.named_parameters())
    for name, value in saved['state_dict'].items():
        if name in params:
            assert torch.equal(params[name].detach(), value), name
    resumed.train()
    assert resumed.iter == 6
    assert (work_dir / 'iter_6.pth').is_file()


def test_plain_torch_load_keeps_safe_defaults(tmp_path):
    """Only mmengine's checkpoint loader gets the extra allowlist."""
    import mmgscnn  # noqa: F401
    import numpy as np
    import pickle
    path = tmp_path / 'np.pth'
    torch.save({'a': np.zeros(2)}, path)
    with pytest.raises(pickle.UnpicklingError):  # torch's safe default is kept
        torch.load(path)
    assert _load_checkpoint(str(path))['a'].shape == (2, )
