"""A run interrupted at iteration k and resumed equals the uninterrupted run:
the batches it trains on after k, and at the end its weights, BN statistics,
optimiser state (momentum buffers) and learning rate (mmengine's Runner, the
tiny GSCNN, CPU), bitwise. It needs :class:`mmgscnn.engine.RNGStateHook`
(tools/train.py adds it): without it the resumed iterations draw other
dropout masks and Gumbel noise, and the weights differ by about 1e-4."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmseg.registry import HOOKS
from mmgscnn.engine import RNGStateHook

from helpers import tiny_runner_config, write_camvid_layout

RECORDS = {}


@HOOKS.register_module(force=True)
class RecordBatchesForTest(Hook):
    """Keeps, per iteration, the batch trained on (images, labels, crops and
    flips) and the learning rate, under ``RECORDS[key]``; raises
    KeyboardInterrupt after iteration ``stop_after`` (after its checkpoint)."""
    priority = 'LOWEST'

    def __init__(self, key, stop_after=None):
        self.key = key
        self.stop_after = stop_after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        RECORDS.setdefault(self.key, {})[runner.iter + 1] = dict(
            inputs=[x.clone() for x in data_batch['inputs']],
            labels=[s.gt_sem_seg.data.clone() for s in data_batch['data_samples']],
            meta=[(s.img_path, s.flip) for s in data_batch['data_samples']],
            lr=runner.optim_wrapper.get_lr()['lr'])
        if runner.iter + 1 == self.stop_after:
            raise KeyboardInterrupt('simulated interruption')


def run(work_dir, data_root, key, stop_after=None, resume=False, max_iters=4, rng=True):
    cfg = tiny_runner_config(work_dir, data_root, max_iters=max_iters, interval=2, val=False)
    cfg.custom_hooks = [dict(type='RecordBatchesForTest', key=key, stop_after=stop_after)]
    if rng:  # as tools/train.py does
        cfg.custom_hooks.append(dict(type='RNGStateHook'))
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def assert_same_batches(a, b):
    assert a['meta'] == b['meta']
    for x, y in zip(a['inputs'] + a['labels'], b['inputs'] + b['labels']):
        assert torch.equal(x, y)
    assert a['lr'] == b['lr']


def test_resumed_run_equals_the_uninterrupted_one(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    full = run(tmp_path / 'full', data_root, 'full')
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / 'cut', data_root, 'cut', stop_after=2)
    assert sorted(RECORDS['cut']) == [1, 2]
    resumed = run(tmp_path / 'cut', data_root, 'resumed', resume=True)
    assert sorted(RECORDS['resumed']) == [3, 4], 'resume starts after the checkpoint'
    assert resumed.iter == full.iter == 4

    for it in (1, 2):
        assert_same_batches(RECORDS['cut'][it], RECORDS['full'][it])
    for it in (3, 4):  # the next batches: same images, crops, flips, order
        assert_same_batches(RECORDS['resumed'][it], RECORDS['full'][it])

    state, ref = resumed.model.state_dict(), full.model.state_dict()
    assert state.keys() == ref.keys()
    for name in ref:  # weights and BN running statistics, bitwise
        assert torch.equal(state[name], ref[name]), name
    opt, opt_ref = (r.optim_wrapper.optimizer.state_dict() for r in (resumed, full))
    assert opt['state'].keys() == opt_ref['state'].keys() and opt['state']
    for k in opt_ref['state']:
        assert torch.equal(opt['state'][k]['momentum_buffer'],
                           opt_ref['state'][k]['momentum_buffer'])
    assert opt['param_groups'] == opt_ref['param_groups']  # lr, momentum, decay
    assert resumed.optim_wrapper.get_lr() == full.optim_wrapper.get_lr()
    # the learning rate did change on the way (PolyLR): a frozen one would fail
    assert RECORDS['full'][4]['lr'] != RECORDS['full'][1]['lr']


def test_rng_state_is_restored_on_resume_only():
    """A checkpoint loaded with ``load_from`` (another run) keeps this run's
    random state; a resumed one continues the saved state."""
    hook = RNGStateHook()
    checkpoint = dict(meta=dict())
    hook.before_save_checkpoint(None, checkpoint)
    drawn = torch.rand(4)
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)
    assert torch.equal(torch.rand(4), drawn)
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    assert not torch.equal(torch.rand(4), drawn)
