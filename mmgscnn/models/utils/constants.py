"""Constant tensors (filter taps, fixed weights) built once per key.

Built eagerly every step, a filter bank costs a dozen tiny kernels (each a
launch on a GPU) for the same values; here it is built on the first call
and served from then on. The values are plain tensors: no gradient, not
inference tensors (a model may be called under ``torch.inference_mode``
first and trained afterwards). While ``torch.compile`` traces, they are
built in the graph instead (Dynamo keeps no reference to this cache; the
build is folded into constants there).
"""
from typing import Callable, Hashable

import torch

_CACHE = {}


def cached_constant(key: Hashable, build: Callable):
    """``build()`` (a tensor or a tuple of tensors, e.g. on ``device`` in
    ``dtype``, both part of ``key``) made once per ``key`` and served from
    then on; callers must not modify it in place."""
    if torch.compiler.is_compiling():
        return build()
    value = _CACHE.get(key)
    if value is None:
        with torch.inference_mode(False), torch.no_grad():
            value = build()
        _CACHE[key] = value
    return value


def clear_constants() -> None:
    """Forget every cached constant (they are rebuilt on their next use)."""
    _CACHE.clear()
