"""Data transforms registered in ``mmseg.registry.TRANSFORMS``."""
from .checked_loading import CheckedLoadAnnotations, CheckedLoadImageFromFile

__all__ = ['CheckedLoadAnnotations', 'CheckedLoadImageFromFile']
