"""A downscaled copy of a dataset in CamVid's layout (small enough to carry).

Images are resized with ``cv2.INTER_AREA`` (pixel-area averaging) and saved
as JPEG; label maps with ``cv2.INTER_NEAREST`` (every label value is one of
the source's) and saved as PNG, under the same file stem. The copy records
how it was made in ``downscale.json``.
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .camvid_layout import LAYOUT

RECORD_FILE = 'downscale.json'
IMAGE_SUFFIX, LABEL_SUFFIX = '.jpg', '.png'


def _pairs(src: str, split: str, img_suffix: str) -> list:
    """(image path, label path, stem) of every image of ``split``, checked."""
    img_dir, ann_dir = osp.join(src, split), osp.join(src, split + 'annot')
    for folder in (img_dir, ann_dir):
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{folder!r} does not exist; the source must have the '
                                    f'layout {LAYOUT}')
    names = sorted(n for n in os.listdir(img_dir) if n.endswith(img_suffix))
    if not names:
        raise FileNotFoundError(f'{img_dir!r} holds no *{img_suffix} image')
    pairs = []
    for name in names:
        stem = name[:-len(img_suffix)]
        label = osp.join(ann_dir, stem + LABEL_SUFFIX)
        if not osp.isfile(label):
            raise FileNotFoundError(f'label {label!r} of image {name!r} does not exist')
        pairs.append((osp.join(img_dir, name), label, stem))
    return pairs


def _prepare(dst: str, splits: Sequence[str]) -> None:
    """Refuse a non-empty folder that is not an earlier copy; empty the split
    folders of one that is (a copy never mixes two runs)."""
    if osp.isdir(dst) and os.listdir(dst):
        if not osp.isfile(osp.join(dst, RECORD_FILE)):
            raise FileExistsError(f'{dst!r} is not empty and holds no {RECORD_FILE}, so it is '
                                  'not a downscaled copy; choose an empty or new folder')
        for split in splits:
            for folder in (osp.join(dst, split), osp.join(dst, split + 'annot')):
                if osp.isdir(folder):
                    for name in os.listdir(folder):
                        os.remove(osp.join(folder, name))


def downscale_camvid(src: str, dst: str, size: Tuple[int, int] = (180, 240),
                     splits: Sequence[str] = ('train', 'val'), jpeg_quality: int = 92,
                     img_suffix: str = '.png') -> Dict[str, int]:
    """Write ``splits`` of ``src`` resized to ``size`` = (H, W) px into ``dst``.

    Args:
        src: data root in CamVid's layout (labels are ``.png``).
        dst: output data root; created if needed. A non-empty folder must be
            an earlier copy (it has ``downscale.json``); its split folders are
            emptied first.
        size: (height, width) of every image and label map.
        splits: splits to copy (``<split>/`` and ``<split>annot/``).
        jpeg_quality: JPEG quality of the images, 1-100.
        img_suffix: suffix of the source images.

    Returns:
        images written per split.
    """
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f'size must be two positive integers (H, W), got {size}')
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f'jpeg_quality must be in 1..100, got {jpeg_quality}')
    pairs = {split: _pairs(src, split, img_suffix) for split in splits}  # check all first
    _prepare(dst, splits)
    counts = {}
    for split, items in pairs.items():
        os.makedirs(osp.join(dst, split), exist_ok=True)
        os.makedirs(osp.join(dst, split + 'annot'), exist_ok=True)
        for img_path, label_path, stem in items:
            img = cv2.imread(img_path, cv2.IMREAD_COLOR)
            label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
            if img is None or label is None:
                raise OSError(f'could not read {img_path!r} or {label_path!r}')
            if label.ndim != 2 or label.shape != img.shape[:2]:
                raise ValueError(f'label {label_path!r} must be one channel of the image\'s '
                                 f'size {img.shape[:2]}, got shape {label.shape}')
            small = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            small_label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
            for path, arr, params in (
                    (osp.join(dst, split, stem + IMAGE_SUFFIX), small,
                     [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]),
                    (osp.join(dst, split + 'annot', stem + LABEL_SUFFIX),
                     np.ascontiguousarray(small_label), [cv2.IMWRITE_PNG_COMPRESSION, 9])):
                if not cv2.imwrite(path, arr, params):
                    raise OSError(f'could not write {path}')
        counts[split] = len(items)
    record = dict(source=osp.abspath(src), size=[height, width], splits=counts,
                  image=dict(suffix=IMAGE_SUFFIX, interpolation='cv2.INTER_AREA',
                             jpeg_quality=jpeg_quality),
                  label=dict(suffix=LABEL_SUFFIX, interpolation='cv2.INTER_NEAREST'))
    with open(osp.join(dst, RECORD_FILE), 'w') as f:
        json.dump(record, f, indent=1)
        f.write('\n')
    return counts


__all__ = ['downscale_camvid', 'RECORD_FILE', 'IMAGE_SUFFIX', 'LABEL_SUFFIX']
