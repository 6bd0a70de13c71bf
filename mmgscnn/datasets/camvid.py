"""CamVid, the 11-class split used by SegNet (360x480 street scenes)."""
from typing import Dict, Optional, Sequence, Union

from mmseg.registry import DATASETS
from .camvid_layout import LAYOUT, CamVidLayoutDataset


@DATASETS.register_module()
class CamVidDataset(CamVidLayoutDataset):
    """CamVid with 11 classes; raw label 11 (unlabelled) becomes 255.

    Layout of :class:`CamVidLayoutDataset`: ``data_root/<split>/`` holds the
    images and ``data_root/<split>annot/`` the label maps (uint8 PNG, one
    class id per pixel), file names equal.

    Every sample's ``label_map`` sends the raw label 11 to 255, mmseg's
    ``ignore_index``, so heads and metrics ignore unlabelled pixels without
    further settings (``LoadAnnotations`` applies it). With a subset of
    ``classes`` in ``metainfo``, the classes left out also become 255, as in
    ``BaseSegDataset``.
    """
    METAINFO = dict(
        classes=('sky', 'building', 'pole', 'road', 'sidewalk', 'tree',
                 'sign-symbol', 'fence', 'car', 'pedestrian', 'bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
                 [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
                 [64, 0, 128], [64, 64, 0], [0, 128, 192]])
    DATA_NAME = 'CamVid'
    #: Raw label value of unlabelled pixels in the CamVid label PNGs.
    UNLABELLED = 11

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None
                      ) -> Union[Dict[int, int], None]:
        """``{11: 255}`` plus BaseSegDataset's map for a subset of classes."""
        label_map = dict(super().get_label_map(new_classes) or {})
        label_map[cls.UNLABELLED] = cls.IGNORE
        return label_map


__all__ = ['CamVidDataset', 'LAYOUT']
