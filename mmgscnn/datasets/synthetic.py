"""SyntheticStreet: the built-in street-like dataset (no download).

:mod:`mmgscnn.datasets.synthetic_street_generator` draws it (command line:
``tools/generate_synthetic_data.py``); this module holds its classes and
palette (the generator imports them, so both always agree).
"""
import json
import os.path as osp

from mmseg.registry import DATASETS
from .camvid_layout import CamVidLayoutDataset

#: Class names, in label id order (label PNG value = index).
CLASSES = ('sky', 'building', 'road', 'sidewalk', 'vegetation', 'pole', 'sign',
           'fence', 'wire', 'pedestrian')
#: RGB colour of each class in pictures (CamVid's colours for CamVid's classes).
PALETTE = [[128, 128, 128], [128, 0, 0], [128, 64, 128], [60, 40, 222], [128, 128, 0],
           [192, 192, 128], [192, 128, 128], [64, 64, 128], [0, 192, 192], [64, 64, 0]]
#: Thin and small classes, the ones a boundary-aware model should improve
#: (the demo reports their IoU and mean).
THIN_CLASSES = ('pole', 'sign', 'fence', 'wire', 'pedestrian')
#: File the generator writes into the data root, describing the classes.
META_FILE = 'meta.json'
GENERATE_HINT = ('generate it with: python tools/generate_synthetic_data.py '
                 '--out-dir <data_root> (default data/synthetic)')


@DATASETS.register_module()
class SyntheticStreetDataset(CamVidLayoutDataset):
    """The synthetic street scenes of ``tools/generate_synthetic_data.py``.

    CamVid's layout (``train/``, ``trainannot/``, ``val/``, ``valannot/``;
    image and label PNG share the file name), with the 10 classes of
    :data:`CLASSES`. Every pixel is labelled (ids 0-9); there is no
    unlabelled value, so no label is remapped, except that classes left out
    of a ``metainfo=dict(classes=...)`` subset become 255 (mmseg's
    ignore_index), as in ``BaseSegDataset``.

    When the data root holds the generator's ``meta.json``, its class list
    must equal :data:`CLASSES` (data from another generator version fails
    early instead of training on shifted ids).
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'SyntheticStreet'

    def data_hint(self) -> str:
        return GENERATE_HINT[0].upper() + GENERATE_HINT[1:] + '.'

    def load_data_list(self):
        """The checked list of (image, label) paths, after checking the class
        list of ``meta.json`` (when present) against :data:`CLASSES`."""
        meta_path = osp.join(self.data_root or '', META_FILE)
        if self.backend_args is None and osp.isfile(meta_path):
            with open(meta_path) as f:
                classes = tuple(json.load(f).get('classes', ()))
            if classes != CLASSES:
                raise ValueError(
                    f'{meta_path} lists the classes {classes}, SyntheticStreetDataset '
                    f'expects {CLASSES}: the data comes from another generator '
                    f'version; {GENERATE_HINT}')
        return super().load_data_list()


__all__ = ['SyntheticStreetDataset', 'CLASSES', 'PALETTE', 'THIN_CLASSES', 'META_FILE']
