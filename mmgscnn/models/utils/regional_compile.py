"""``torch.compile`` of parts of a model (regional compilation), configured
by ``shape_head.compile``.

Only the named regions are compiled, never the whole model: the backbone
and the decoder stay eager. Modules are compiled in place
(``nn.Module.compile``), functions through a cache of compiled wrappers, so
no ``OptimizedModule`` wraps anything and ``state_dict`` keys carry no
``_orig_mod.`` prefix: checkpoints move freely between compiled and eager
models.
"""
import functools
from typing import Optional

import torch
from torch import Tensor

from ...utils.config_errors import ConfigError
from ...utils.kwargs_check import check_dict_keys

#: ``torch.compile`` modes and whether they capture CUDA graphs (CUDA only).
COMPILE_MODES = {
    'default': False,
    'max-autotune-no-cudagraphs': False,
    'reduce-overhead': True,
    'max-autotune': True,
}

#: Keys of ``shape_head.compile`` and their defaults.
COMPILE_DEFAULTS = dict(stream=True, losses=True, mode='default', dynamic=None)


def compile_settings(cfg, section: str = 'shape_head.compile') -> Optional[dict]:
    """Checked settings of a ``compile`` config entry, defaults filled in;
    None when compilation is off (``None``/``False``, or neither region on).

    ``True`` or ``dict()`` compiles both regions in ``mode='default'``.
    Unknown keys and bad values raise :class:`ConfigError` naming the key."""
    if cfg is None or cfg is False:
        return None
    if cfg is True:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ConfigError(f'{section} must be a dict (e.g. dict(mode=\'default\')), True '
                          f'or None (off), got {cfg!r}')
    check_dict_keys(cfg, COMPILE_DEFAULTS, section)
    settings = dict(COMPILE_DEFAULTS, **cfg)
    for key in ('stream', 'losses'):
        if not isinstance(settings[key], bool):
            raise ConfigError(f'{section}.{key} must be True or False, got '
                              f'{settings[key]!r}')
    if settings['mode'] not in COMPILE_MODES:
        raise ConfigError(f'{section}.mode must be one of {", ".join(map(repr, COMPILE_MODES))}'
                          f' (\'reduce-overhead\' and \'max-autotune\' capture CUDA graphs, '
                          f'CUDA only), got {settings["mode"]!r}')
    if settings['dynamic'] not in (None, True, False):
        raise ConfigError(f'{section}.dynamic must be None (torch decides), True or False, '
                          f'got {settings["dynamic"]!r}')
    if not (settings['stream'] or settings['losses']):
        return None
    return settings


def uses_cuda_graphs(settings: Optional[dict]) -> bool:
    """Whether ``settings`` (from :func:`compile_settings`) capture CUDA graphs."""
    return settings is not None and COMPILE_MODES[settings['mode']]


def region_settings(settings: Optional[dict], region: str) -> Optional[dict]:
    """``settings`` when they compile ``region`` ('stream' or 'losses'), else None."""
    return settings if settings is not None and settings[region] else None


def check_device(settings: Optional[dict], x: Tensor,
                 section: str = 'shape_head.compile') -> None:
    """Refuse a CUDA-graph mode for tensors that are not on CUDA (checks
    the device only, no synchronisation)."""
    if uses_cuda_graphs(settings) and not x.is_cuda:
        raise ConfigError(f'{section}.mode={settings["mode"]!r} captures CUDA graphs, which '
                          f'need CUDA tensors, but the model runs on {x.device.type}; use '
                          f"mode='default' (or 'max-autotune-no-cudagraphs') there")


def compile_module(module: torch.nn.Module, settings: dict) -> None:
    """Compile ``module``'s forward in place (``state_dict`` keys unchanged)."""
    module.compile(mode=settings['mode'], dynamic=settings['dynamic'])


@functools.lru_cache(maxsize=None)
def _compiled(fn, mode: str, dynamic):
    return torch.compile(fn, mode=mode, dynamic=dynamic)


def compiled_function(fn, settings: Optional[dict]):
    """``fn`` compiled with ``settings`` (one wrapper per function and
    settings, shared by every caller), or ``fn`` itself for None. Pass a
    plain function (not a bound method): modules are arguments, so copies
    of a module never call into the original."""
    if settings is None:
        return fn
    return _compiled(fn, settings['mode'], settings['dynamic'])


__all__ = ['COMPILE_DEFAULTS', 'COMPILE_MODES', 'check_device', 'compile_module',
           'compile_settings', 'compiled_function', 'region_settings', 'uses_cuda_graphs']
