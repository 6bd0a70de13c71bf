"""Datasets in CamVid's folder layout: ``<split>/`` images, ``<split>annot/`` labels."""
import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset

LAYOUT = ('<data_root>/train/ and trainannot/, val/ and valannot/ (test/ and '
          'testannot/ optional): RGB images in the first folder, label PNGs with '
          'the same file names in the *annot folder')


class CamVidLayoutDataset(BaseSegDataset):
    """Base of the datasets laid out as CamVid (not registered itself).

    ``data_root/<split>/`` holds the images and ``data_root/<split>annot/``
    the label maps (uint8 PNG, one class id per pixel), file names equal,
    e.g. ``data_prefix=dict(img_path='train', seg_map_path='trainannot')``.
    Missing folders, an image folder without images and images without a
    label file fail when the dataset is built, with :meth:`data_hint`.

    Subclasses set ``METAINFO`` and :attr:`DATA_NAME` and may override
    :meth:`data_hint` (how to get the data).
    """
    #: Name of the data in error messages.
    DATA_NAME = 'dataset'
    #: Where ``LoadAnnotations`` sends remapped labels (mmseg's ignore_index).
    IGNORE = 255

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 ignore_index: int = 255, **kwargs) -> None:
        if ignore_index != self.IGNORE:
            raise ValueError(
                f'{type(self).__name__} maps left-out (and unlabelled) pixels to 255 '
                f'(mmseg\'s label_map always targets 255); got ignore_index='
                f'{ignore_index}. Keep ignore_index=255 in the dataset, heads and metrics.')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=ignore_index, **kwargs)

    def data_hint(self) -> str:
        """What the layout is and where to point ``data_root``."""
        return (f'Expected layout: {LAYOUT}. Set data_root to the {self.DATA_NAME} '
                'folder.')

    def _check_folder(self, folder: Optional[str], what: str) -> None:
        if folder is None or not osp.isdir(folder):
            raise FileNotFoundError(
                f'{self.DATA_NAME} {what} folder {folder!r} does not exist (data_root='
                f'{self.data_root!r}, data_prefix={self.data_prefix!r}). '
                f'{self.data_hint()}')

    def load_data_list(self) -> List[dict]:
        """Pairs of image and label path; fails early when a folder, an image
        or a label file is missing (local files without ``ann_file`` only)."""
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
                    f'{self.DATA_NAME} image folder {img_dir!r} holds no '
                    f'*{self.img_suffix} files. {self.data_hint()}')
            missing = [d['seg_map_path'] for d in data_list
                       if 'seg_map_path' in d and not osp.isfile(d['seg_map_path'])]
            if missing:
                raise FileNotFoundError(
                    f'{len(missing)} {self.DATA_NAME} label files are missing, e.g. '
                    f'{missing[0]!r}: every image in {img_dir!r} needs a label PNG '
                    f'with the same name in {ann_dir!r}.')
        return data_list


__all__ = ['CamVidLayoutDataset', 'LAYOUT']
