"""CamVid, the 11-class split used by SegNet (360x480 street scenes)."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

LAYOUT = ('<data_root>/train/ and trainannot/, val/ and valannot/ (test/ and '
          'testannot/ optional): RGB images in the first folder, label PNGs with '
          'the same file names in the *annot folder')


@DATASETS.register_module()
class CamVidDataset(BaseSegDataset):
    """CamVid with 11 classes; raw label 11 (unlabelled) becomes 255.

    Layout: ``data_root/<split>/`` holds the images and
    ``data_root/<split>annot/`` the label maps (uint8 PNG, one class id per
    pixel), file names equal, e.g. ``data_prefix=dict(img_path='train',
    seg_map_path='trainannot')``.

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
    #: Raw label value of unlabelled pixels in the CamVid label PNGs.
    UNLABELLED = 11
    #: Where ``LoadAnnotations`` sends it (mmseg's ignore_index).
    IGNORE = 255

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 ignore_index: int = 255, **kwargs) -> None:
        if ignore_index != self.IGNORE:
            raise ValueError(
                f'CamVidDataset maps unlabelled pixels to 255 (mmseg\'s label_map '
                f'always targets 255); got ignore_index={ignore_index}. Keep '
                'ignore_index=255 in the dataset, heads and metrics.')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=ignore_index, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None
                      ) -> Union[Dict[int, int], None]:
        """``{11: 255}`` plus BaseSegDataset's map for a subset of classes."""
        label_map = dict(super().get_label_map(new_classes) or {})
        label_map[cls.UNLABELLED] = cls.IGNORE
        return label_map

    def _check_folder(self, folder: Optional[str], what: str) -> None:
        if folder is None or not osp.isdir(folder):
            raise FileNotFoundError(
                f'CamVid {what} folder {folder!r} does not exist (data_root='
                f'{self.data_root!r}, data_prefix={self.data_prefix!r}). Expected '
                f'layout: {LAYOUT}. Set data_root to the CamVid folder.')

    def load_data_list(self) -> List[dict]:
        """Pairs of image and label path; fails early when a folder, an image
        or a label file is missing."""
        img_dir = self.data_prefix.get('img_path', None)
        ann_dir = self.data_prefix.get('seg_map_path', None)
        local = self.backend_args is None and not self.ann_file
        if local:
            self._check_folder(img_dir, 'image')
            if ann_dir is not None:
                self._check_folder(ann_dir, 'label')
        data_list = super().load_data_list()
        if local:
            if not data_list:
                raise FileNotFoundError(
                    f'CamVid image folder {img_dir!r} holds no *{self.img_suffix} '
                    f'files. Expected layout: {LAYOUT}.')
            missing = [d['seg_map_path'] for d in data_list
                       if 'seg_map_path' in d and not osp.isfile(d['seg_map_path'])]
            if missing:
                raise FileNotFoundError(
                    f'{len(missing)} CamVid label files are missing, e.g. '
                    f'{missing[0]!r}: every image in {img_dir!r} needs a label PNG '
                    f'with the same name in {ann_dir!r}.')
        return data_list


__all__ = ['CamVidDataset', 'LAYOUT']
