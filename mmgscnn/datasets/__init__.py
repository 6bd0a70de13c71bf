"""Datasets registered in ``mmseg.registry.DATASETS``."""
from .camvid import CamVidDataset

__all__ = ['CamVidDataset']
