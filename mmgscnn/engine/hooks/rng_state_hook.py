"""Resume with the random state the interrupted run had, on every rank."""
import functools
import logging
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS


def get_torch_rng_state() -> dict:
    """This process's torch generators: ``cpu`` (uint8 tensor) and, when
    CUDA is there, ``cuda`` (one uint8 tensor per visible device)."""
    state = dict(cpu=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_torch_rng_state(state: dict) -> None:
    """Set this process's generators to ``state`` (as :func:`get_torch_rng_state`
    returns it). The tensors may lie on a GPU (mmengine's resume maps the whole
    checkpoint there); torch takes a state only from a CPU tensor."""
    torch.set_rng_state(state['cpu'].cpu())
    cuda = state.get('cuda')
    if cuda is None or not torch.cuda.is_available():
        return
    if len(cuda) != torch.cuda.device_count():
        print_log(f'RNGStateHook: the checkpoint holds the CUDA random states of {len(cuda)} '
                  f'devices, this process sees {torch.cuda.device_count()}: the CUDA '
                  'generators keep the state of this run\'s seed', logger='current',
                  level=logging.WARNING)
        return
    torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves torch's random generators (CPU and every CUDA device) of every
    rank in each checkpoint and restores each rank's own on resume, so that
    the resumed run draws the same dropout masks and Gumbel noise as an
    uninterrupted one. mmengine's resume re-seeds and skips the trained
    batches (their transforms redraw numpy's numbers), but the model's draws
    from torch's generator in those iterations are not replayed.
    ``custom_hooks = [dict(type='RNGStateHook')]``; tools/train.py adds it.

    Checkpoint entry: ``meta['torch_rng_state'] = dict(world_size=W,
    ranks=[state of rank 0, ..., state of rank W-1])``, each state a dict
    ``cpu=uint8 tensor`` (and ``cuda=[uint8 tensor per device]`` with CUDA).
    A resumed run of another world size restores nothing (with a warning):
    each rank keeps the state of its seed. The single state that earlier
    versions wrote (``dict(cpu=..., cuda=...)``, rank 0's) is restored in a
    1-process run only.

    In a run of several processes the states are gathered when
    ``runner.save_checkpoint`` is called, which mmengine's CheckpointHook does
    on every rank (the method itself is ``master_only``); a hook that calls it
    on rank 0 alone would wait for the other ranks forever."""
    priority = 'VERY_LOW'

    def __init__(self):
        self._gathered: Optional[List[dict]] = None  # every rank's, for the save under way
        self._resumed: Optional[dict] = None  # this rank's, from the resumed checkpoint

    def before_run(self, runner) -> None:
        # Only rank 0 writes the checkpoint: mmengine runs before_save_checkpoint
        # inside Runner.save_checkpoint, which is master_only, so a gather there
        # would wait for ranks that never come. CheckpointHook calls
        # runner.save_checkpoint on every rank (for every save: interval, last,
        # best), so wrapping it gathers at exactly the moment of each save,
        # without copying CheckpointHook's rules for when a save is due.
        save = runner.save_checkpoint
        if get_world_size() == 1 or getattr(save, 'gathers_rng_state', False):
            return

        @functools.wraps(save)
        def save_checkpoint(*args, **kwargs):
            self._gathered = all_gather_object(get_torch_rng_state())
            try:
                return save(*args, **kwargs)
            finally:
                self._gathered = None

        save_checkpoint.gathers_rng_state = True
        runner.save_checkpoint = save_checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        world_size = get_world_size()
        states = [get_torch_rng_state()] if world_size == 1 else self._gathered
        if states is None:
            print_log('RNGStateHook: a checkpoint saved without runner.save_checkpoint on '
                      'every rank holds no random state; a run resumed from it starts '
                      'from its seed', logger='current', level=logging.WARNING)
            return
        checkpoint.setdefault('meta', {})['torch_rng_state'] = dict(
            world_size=world_size, ranks=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('meta', {}).get('torch_rng_state')
        if saved is None or not getattr(runner, '_resume', False):
            return  # a checkpoint of another run (load_from): keep this run's seed
        self._resumed = self._own_state(saved)
        if self._resumed is not None:
            set_torch_rng_state(self._resumed)

    def before_train(self, runner) -> None:
        # mmengine's resume re-seeds after after_load_checkpoint when the
        # checkpoint's seed differs from the config's (always when the config
        # sets none): set the restored state again before the first iteration.
        if self._resumed is not None:
            set_torch_rng_state(self._resumed)
            self._resumed = None

    @staticmethod
    def _own_state(saved: dict) -> Optional[dict]:
        """This rank's state in the checkpoint entry ``saved``; None, with a
        warning, when the entry was written by a run of another world size."""
        world_size = get_world_size()
        if 'ranks' not in saved:  # earlier single-state format: rank 0's only
            if world_size == 1:
                return saved
            print_log('RNGStateHook: the checkpoint holds one random state (rank 0\'s, '
                      'written before states were saved per rank); this run has '
                      f'{world_size} processes: none is restored, each process keeps the '
                      'random state of its seed', logger='current', level=logging.WARNING)
            return None
        if saved['world_size'] != world_size:
            print_log('RNGStateHook: the checkpoint holds the random states of '
                      f'{saved["world_size"]} processes, this run has {world_size}: none is '
                      'restored, each process keeps the random state of its seed; resume '
                      f'with {saved["world_size"]} processes to continue the same draws',
                      logger='current', level=logging.WARNING)
            return None
        return saved['ranks'][get_rank()]
