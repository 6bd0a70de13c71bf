"""Datasets registered in ``mmseg.registry.DATASETS`` (and their common base)."""
from .camvid import CamVidDataset
from .camvid_layout import CamVidLayoutDataset
from .synthetic import SyntheticStreetDataset
from .transforms import CheckedLoadAnnotations, CheckedLoadImageFromFile

__all__ = ['CamVidDataset', 'CamVidLayoutDataset', 'SyntheticStreetDataset',
           'CheckedLoadAnnotations', 'CheckedLoadImageFromFile']
