"""Let mmengine 0.10.7 load its own checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(..., weights_only=True)`` the default. mmengine
0.10.7 calls ``torch.load`` without that argument, and the checkpoints its
Runner writes hold a few non-tensor objects (the message hub's
``HistoryBuffer``, numpy scalars and arrays, and a bound method of
``HistoryBuffer`` pickled through ``getattr``), so ``resume`` and ``load_from``
fail with "Weights only load failed".

We keep safe loading on and allow exactly those globals, and only while
mmengine's ``CheckpointLoader`` loads a checkpoint: every other ``torch.load``
in the process keeps torch's default allowlist.
"""
import contextlib
import functools

import numpy as np
import torch

_PATCHED_ATTR = '_mmgscnn_safe_globals'


def _numpy_multiarray():
    core = getattr(np, '_core', None) or np.core  # numpy >= 2 / numpy 1.x
    return core.multiarray


def mmengine_checkpoint_globals():
    """Globals that checkpoints written by mmengine's Runner contain."""
    from mmengine.logging import HistoryBuffer
    multiarray = _numpy_multiarray()
    allowed = [
        HistoryBuffer,
        getattr,  # HistoryBuffer pickles bound methods as getattr(obj, name)
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
    ]
    # numpy >= 1.25 pickles dtypes through their classes (np.dtypes.*DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
        ]
    # Pickles written under numpy 1.x name ``numpy.core.multiarray``; under
    # numpy 2 that module is an alias, so register the old names as well.
    allowed += [(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
                (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    return allowed


def _safe_globals_context():
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:  # torch < 2.5: weights_only is off by default
        return contextlib.nullcontext()
    return safe_globals(mmengine_checkpoint_globals())


def patch_mmengine_checkpoint_loading():
    """Wrap ``CheckpointLoader.load_checkpoint`` so mmengine's checkpoints load
    with ``weights_only=True`` and a minimal allowlist. Idempotent."""
    from mmengine.runner.checkpoint import CheckpointLoader

    current = CheckpointLoader.__dict__['load_checkpoint']
    if getattr(current.__func__, _PATCHED_ATTR, False):
        return
    original = current.__func__

    @functools.wraps(original)
    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        with _safe_globals_context():
            return original(cls, filename, map_location, logger)

    setattr(load_checkpoint, _PATCHED_ATTR, True)
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
