"""Visualizers registered in ``mmseg.registry.VISUALIZERS``."""
from .seg_boundary_visualizer import SegBoundaryVisualizer

__all__ = ['SegBoundaryVisualizer']
