"""RNGStateHook saves every rank's torch random state and each rank resumes
its own: a real 2-process run (mmengine Runner, DDP, gloo, CPU) whose ranks
are seeded differently (``randomness.diff_rank_seed``) saves a checkpoint,
the states are perturbed, and the resumed ranks hold, bitwise, the state
each had at the save, and so draw differently from each other. A checkpoint
of another world size restores nothing (with a warning naming both sizes);
the single-state checkpoints of earlier versions still resume 1 process."""
import logging
import os.path as osp
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import BaseModel

from mmgscnn.engine import RNGStateHook

RESUME = SimpleNamespace(_resume=True)


class CaughtWarnings(logging.Handler):
    """Collects the warnings printed to mmengine's current logger."""

    def __enter__(self):
        self.messages = []
        self.logger = MMLogger.get_current_instance()
        self.logger.addHandler(self)
        return self.messages

    def __exit__(self, *exc):
        self.logger.removeHandler(self)

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


# ------------------------------------------------------------ two processes

class DropoutToy(BaseModel):
    """(B, 4) -> (B, 4): linear then dropout, so every training step draws
    a mask from torch's CPU generator."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        y = self.dropout(self.linear(torch.stack(inputs)))
        return dict(loss=y.square().mean()) if mode == 'loss' else y


class StateAtTrainStart(Hook):
    """Keeps torch's CPU state when training starts (after RNGStateHook)."""
    priority = 'LOWEST'

    def before_train(self, runner):
        self.state = torch.get_rng_state()


def toy_runner(work_dir, hooks, resume):
    from mmengine.runner import Runner
    return Runner(
        model=DropoutToy(), work_dir=work_dir,
        experiment_name=f'rng_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=[dict(inputs=torch.full((4,), float(i))) for i in range(8)]),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2)),
        custom_hooks=hooks, resume=resume, launcher='pytorch',
        env_cfg=dict(dist_cfg=dict(backend='gloo'), mp_cfg=dict(mp_start_method='spawn')),
        cfg=dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel', device_ids=None)),
        # seed None: each run draws a shared seed, mmengine adds the rank, and
        # on resume re-seeds with the checkpoint's after after_load_checkpoint
        randomness=dict(seed=None, diff_rank_seed=True),
        default_scope='mmengine', log_level='WARNING')


def _rank_worker(rank, world_size, init_file, work_dir, out_dir):
    import os
    import torch.distributed as dist
    os.environ['LOCAL_RANK'] = str(rank)  # as torchrun sets it; mmengine's DDP wrapper reads it
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size)
    try:
        toy_runner(work_dir, [RNGStateHook()], resume=False).train()  # saves at iter 2
        saved = torch.get_rng_state()  # nothing draws after the save
        saved_draws = torch.rand(8)
        torch.manual_seed(1234)  # perturbed: the same state on both ranks
        probe = StateAtTrainStart()
        toy_runner(work_dir, [RNGStateHook(), probe], resume=True).train()
        resumed_draws = torch.rand(8)

        # a 1-process checkpoint and an old single-state one restore nothing here
        kept = torch.get_rng_state()
        other = dict(cpu=torch.Generator().manual_seed(9).get_state())
        with CaughtWarnings() as warned:
            for entry in (dict(world_size=1, ranks=[other]), other):
                RNGStateHook().after_load_checkpoint(
                    RESUME, dict(meta=dict(torch_rng_state=entry)))
        torch.save(dict(saved=saved, saved_draws=saved_draws, at_train_start=probe.state,
                        resumed_draws=resumed_draws,
                        kept=torch.equal(torch.get_rng_state(), kept), warned=warned),
                   osp.join(out_dir, f'rank{rank}.pt'))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    import torch.multiprocessing as mp
    tmp = tmp_path_factory.mktemp('rng2')
    work_dir = str(tmp / 'work')
    mp.spawn(_rank_worker, args=(2, str(tmp / 'init'), work_dir, str(tmp)), nprocs=2,
             join=True)
    ranks = [torch.load(str(tmp / f'rank{r}.pt')) for r in range(2)]
    checkpoint = torch.load(osp.join(work_dir, 'iter_2.pth'), weights_only=False)
    return ranks, checkpoint


def test_two_ranks_save_their_own_states_and_resume_them(two_ranks):
    ranks, checkpoint = two_ranks
    entry = checkpoint['meta']['torch_rng_state']
    assert entry['world_size'] == 2 and len(entry['ranks']) == 2
    for r, out in enumerate(ranks):
        assert torch.equal(entry['ranks'][r]['cpu'], out['saved'])  # rank r's, at the save
        assert torch.equal(out['at_train_start'], out['saved'])  # resumed bitwise
        assert torch.equal(out['resumed_draws'], out['saved_draws'])
    # seeded apart, the ranks draw differently before and after the resume
    assert not torch.equal(ranks[0]['saved'], ranks[1]['saved'])
    assert not torch.equal(ranks[0]['resumed_draws'], ranks[1]['resumed_draws'])


def test_two_ranks_keep_their_seed_for_a_checkpoint_of_one_process(two_ranks):
    ranks, _ = two_ranks
    for out in ranks:
        assert out['kept'] and len(out['warned']) == 2
        assert 'random states of 1 processes, this run has 2' in out['warned'][0]
        assert 'holds one random state' in out['warned'][1]
        assert 'this run has 2 processes' in out['warned'][1]


def test_one_process_keeps_its_seed_for_a_checkpoint_of_two(two_ranks):
    _, checkpoint = two_ranks
    before = torch.get_rng_state()
    with CaughtWarnings() as warned:
        RNGStateHook().after_load_checkpoint(RESUME, checkpoint)
    assert torch.equal(torch.get_rng_state(), before)
    assert len(warned) == 1
    assert 'random states of 2 processes, this run has 1' in warned[0]


# -------------------------------------------------------------- one process

def test_one_process_checkpoint_holds_its_state_as_rank_0():
    checkpoint = dict(meta=dict())
    RNGStateHook().before_save_checkpoint(None, checkpoint)
    entry = checkpoint['meta']['torch_rng_state']
    assert entry['world_size'] == 1 and len(entry['ranks']) == 1
    assert torch.equal(entry['ranks'][0]['cpu'], torch.get_rng_state())
    assert ('cuda' in entry['ranks'][0]) == torch.cuda.is_available()


def test_old_single_state_checkpoint_resumes_one_process():
    old = dict(meta=dict(torch_rng_state=dict(cpu=torch.get_rng_state())))
    drawn = torch.rand(4)
    with CaughtWarnings() as warned:
        RNGStateHook().after_load_checkpoint(RESUME, old)
    assert torch.equal(torch.rand(4), drawn)
    assert warned == []


def test_state_is_set_again_when_training_starts():
    """mmengine's resume may re-seed after after_load_checkpoint (when the
    checkpoint's seed differs from the config's): before_train sets the
    restored state again, once."""
    hook, checkpoint = RNGStateHook(), dict(meta=dict())
    hook.before_save_checkpoint(None, checkpoint)
    drawn = torch.rand(4)
    hook.after_load_checkpoint(RESUME, checkpoint)
    torch.manual_seed(7)  # the re-seed
    hook.before_train(RESUME)
    assert torch.equal(torch.rand(4), drawn)
    hook.before_train(RESUME)  # a second start keeps the run's state
    assert not torch.equal(torch.rand(4), drawn)
