"""Metrics registered in ``mmseg.registry.METRICS``."""
from .metrics import BoundaryFScore, CropIoUMetric

__all__ = ['BoundaryFScore', 'CropIoUMetric']
