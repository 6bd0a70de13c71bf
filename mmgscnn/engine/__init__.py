"""Training-loop additions (mmengine hooks)."""
from .hooks import RNGStateHook

__all__ = ['RNGStateHook']
