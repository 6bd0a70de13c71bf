"""Unknown keys in a component's config: one error naming the key, the
config section and the closest valid key, instead of Python's
``__init__() got an unexpected keyword argument``."""
import difflib
import inspect
from typing import Iterable, Optional

from .config_errors import UnknownKeyError


def accepted_keys(cls) -> Optional[set]:
    """Keyword arguments ``cls.__init__`` takes; None when it takes ``**kwargs``
    (then any key may be valid)."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != 'self'
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           inspect.Parameter.KEYWORD_ONLY)}


def check_keys(cfg: dict, target, section: str, registry=None,
               also: Iterable[str] = ()) -> None:
    """Raise :class:`UnknownKeyError` for the first key of ``cfg`` that
    ``target`` (a class, or a registered type name looked up in
    ``registry``) does not take. ``section`` is the config path shown (e.g.
    ``'shape_head.shape_stream'``); ``also``: keys handled by the caller.
    Unregistered types and classes taking ``**kwargs`` are not checked."""
    if not isinstance(cfg, dict):
        return
    cls = target
    if isinstance(target, str):
        cls = registry.get(target) if registry is not None else None
    if not inspect.isclass(cls):
        return
    valid = accepted_keys(cls)
    if valid is not None:
        check_dict_keys(cfg, valid | set(also), section, f'{cls.__name__} does not take it')


def check_dict_keys(cfg: dict, valid: Iterable[str], section: str,
                    why: str = 'not a key of this section') -> None:
    """Raise :class:`UnknownKeyError` for the first key of ``cfg`` (other than
    ``type``) that is not in ``valid``, with the closest valid key."""
    valid = set(valid)
    for key in cfg:
        if key == 'type' or key in valid:
            continue
        shown = sorted(k for k in valid if k not in ('init_cfg', 'self'))
        close = difflib.get_close_matches(key, shown, n=1, cutoff=0.6)
        hint = f'did you mean {close[0]!r}? ' if close else ''
        raise UnknownKeyError(f'{section}: unknown key {key!r} ({why}); {hint}valid keys: '
                              f'{", ".join(shown)}')


__all__ = ['accepted_keys', 'check_keys', 'check_dict_keys']
