"""Resume with the random state the interrupted run had."""
import torch
from mmengine.hooks import Hook

from mmseg.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves torch's random generators (CPU and every CUDA device) in each
    checkpoint and restores them when the run resumes from it, so that the
    resumed run draws the same dropout masks and Gumbel noise as an
    uninterrupted one. mmengine's resume re-seeds and skips the trained
    batches (their transforms redraw numpy's numbers), but the model's draws
    from torch's generator in those iterations are not replayed.
    ``custom_hooks = [dict(type='RNGStateHook')]``; tools/train.py adds it."""
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(cpu=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['torch_rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('torch_rng_state')
        if state is None or not getattr(runner, '_resume', False):
            return  # a checkpoint of another run (load_from): keep this run's seed
        torch.set_rng_state(state['cpu'])
        if 'cuda' in state and torch.cuda.is_available() \
                and len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])
