"""Metrics registered in ``mmseg.registry.METRICS``."""
from .metrics import BoundaryFScore, BoundaryIoUMetric, CropIoUMetric

__all__ = ['BoundaryFScore', 'BoundaryIoUMetric', 'CropIoUMetric']
