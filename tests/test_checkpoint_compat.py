"""mmgscnn.utils.checkpoint_compat: mmengine's Runner saves, resumes and
loads its own checkpoints (weights-only loading with the extra allowlist),
while a plain torch.load keeps torch's safe defaults."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmseg.registry import HOOKS

from helpers import tiny_runner_config, write_camvid_layout


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


@HOOKS.register_module(force=True)
class InterruptForTest(Hook):
    """Simulates a crash right after the checkpoint of iteration ``at``."""
    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise KeyboardInterrupt('simulated interruption')


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    full = Runner.from_cfg(tiny_runner_config(tmp_path / 'full', data_root, max_iters=6,
                                              interval=3, val=False))
    full.train()

    cfg = tiny_runner_config(tmp_path / 'cut', data_root, max_iters=6, interval=3, val=False)
    cfg.custom_hooks = [dict(type='InterruptForTest', at=3)]
    with pytest.raises(KeyboardInterrupt):
        Runner.from_cfg(cfg).train()
    assert (tmp_path / 'cut' / 'iter_3.pth').is_file()
    assert not (tmp_path / 'cut' / 'iter_6.pth').exists()

    cfg = tiny_runner_config(tmp_path / 'cut', data_root, max_iters=6, interval=3, val=False)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == full.iter == 6
    assert resumed.optim_wrapper.get_lr() == full.optim_wrapper.get_lr()
    final = _load_checkpoint(str(tmp_path / 'cut' / 'iter_6.pth'))
    assert final['meta']['iter'] == 6


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
