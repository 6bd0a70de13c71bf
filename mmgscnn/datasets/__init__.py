"""Datasets registered in ``mmseg.registry.DATASETS``."""
from .camvid import CamVidDataset
from .synthetic import SyntheticStreetDataset  # noqa: F401

__all__ = ['CamVidDataset']
