"""mmgscnn.cli.train (tools/train.py): training from a config file, resuming,
and the errors it stops with."""
import os
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from mmgscnn.cli import train as cli_train

from helpers import write_camvid_layout, write_tool_config


def test_train_tool_trains_and_resumes(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    config = write_tool_config(tmp_path / 'tiny.py', data_root)
    work = str(tmp_path / 'work')
    cli_train.main([config, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2'])
    first = osp.join(work, 'iter_2.pth')
    assert osp.isfile(first)
    stamp = os.stat(first).st_mtime_ns
    runner = cli_train.main([config, '--work-dir', work, '--resume',
                             '--cfg-options', 'train_cfg.max_iters=4'])
    assert runner.iter == 4 and osp.isfile(osp.join(work, 'iter_4.pth'))
    # resumed at iteration 2: iterations 1-2 (and their checkpoint) not redone
    assert os.stat(first).st_mtime_ns == stamp, '--resume was ignored'
    assert any(type(h).__name__ == 'RNGStateHook' for h in runner.hooks)
    saved = _load_checkpoint(osp.join(work, 'iter_4.pth'))
    assert saved['meta']['iter'] == 4 and 'torch_rng_state' in saved['meta']

    with pytest.raises(FileNotFoundError, match='does not exist'):
        cli_train.main([str(tmp_path / 'nope.py')])


@pytest.mark.skipif(torch.cuda.is_available(), reason='the error is for machines without CUDA')
def test_amp_without_cuda_says_what_to_do(tmp_path):
    config = write_tool_config(tmp_path / 'tiny.py', str(tmp_path / 'data'))
    with pytest.raises(SystemExit, match='--amp needs a CUDA device.*drop --amp'):
        cli_train.main([config, '--work-dir', str(tmp_path / 'work'), '--amp'])
    assert not (tmp_path / 'work').exists()
