"""Checks of one image/label pair: what ``tools/check_data.py`` reports for
every file and what :mod:`mmgscnn.datasets.transforms.checked_loading` raises
on the data workers during training and testing.

A label map is valid when it is a single-channel 8-bit image (PNG mode
``L`` or ``P``, or ``1``) of the image's height and width whose values,
after mmseg's ``reduce_zero_label`` and the dataset's ``label_map``, are
class ids ``0..num_classes-1`` or ``ignore_index``.
"""
import os.path as osp
import struct
from typing import Dict, List, Optional

import numpy as np

CHECK_HINT = 'check every file with: python tools/check_data.py CONFIG'
#: PIL modes of an 8-bit (or 1-bit) single-channel label map.
LABEL_MODES = ('L', 'P', '1')
#: PNG colour types (IHDR) of single-channel images: grey, palette.
_PNG_SINGLE_CHANNEL = {0: 'grey', 3: 'palette'}
_PNG_COLOUR = {2: 'RGB', 4: 'grey + alpha', 6: 'RGBA'}
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class SegInputError(ValueError):
    """An image or label file that cannot be used as it is; the message is one
    line naming the file, the problem and the fix."""


def png_header(path: str) -> Optional[tuple]:
    """(height, width, bit depth, colour type) of a local PNG file from its
    first 26 bytes, or None when the file is not a PNG (or is too short)."""
    with open(path, 'rb') as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b'IHDR':
        return None
    width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
    return height, width, depth, colour


def png_mode_problem(header: tuple) -> Optional[str]:
    """What is wrong with a label PNG's bit depth or colour type, or None."""
    _, _, depth, colour = header
    if colour in _PNG_COLOUR:
        return (f'is an image with colour type {_PNG_COLOUR[colour]}; a label map must be '
                'single-channel 8-bit (one class id per pixel, PNG mode L or P)')
    if depth > 8:
        return (f'is {depth}-bit; a label map must be 8-bit (values 0..255): save it '
                'as uint8')
    return None


def pil_mode_problem(mode: str) -> Optional[str]:
    """What is wrong with a label's PIL ``mode``, or None."""
    if mode in LABEL_MODES:
        return None
    if mode.startswith('I'):
        return (f'is 16/32-bit (mode {mode}); a label map must be 8-bit (values '
                '0..255): save it as uint8')
    return (f'is an image of mode {mode}; a label map must be single-channel 8-bit (one '
            'class id per pixel, PNG mode L or P)')


def map_labels(label: np.ndarray, reduce_zero_label: bool = False,
               label_map: Optional[Dict[int, int]] = None) -> np.ndarray:
    """The uint8 label map as mmseg's ``LoadAnnotations`` delivers it:
    ``reduce_zero_label`` (0 -> 255, v -> v - 1, 255 stays), then ``label_map``."""
    label = label.astype(np.uint8)
    if reduce_zero_label:
        label = label.copy()
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
    if label_map:
        lut = np.arange(256, dtype=np.uint8)
        for old, new in label_map.items():
            if 0 <= old < 256:
                lut[old] = new
        label = lut[label]
    return label


def out_of_range(label: np.ndarray, num_classes: int, ignore_index: int) -> Dict[int, int]:
    """{value: pixel count} of the values of the uint8 ``label`` that are
    neither a class id (0..num_classes-1) nor ``ignore_index``. Clean labels
    cost two comparisons over the pixels; only bad ones are histogrammed."""
    above = np.count_nonzero(label >= num_classes)
    if above == 0 or (ignore_index >= num_classes
                      and above == np.count_nonzero(label == ignore_index)):
        return {}
    counts = np.bincount(label.ravel(), minlength=256)
    counts[:num_classes] = 0
    if 0 <= ignore_index < 256:
        counts[ignore_index] = 0
    bad = np.flatnonzero(counts)
    return {int(v): int(counts[v]) for v in bad}


def describe_values(bad: Dict[int, int], num_classes: int, ignore_index: int,
                    reduce_zero_label: bool = False) -> str:
    """'has values 37 (120 px), 200 (5 px) outside ...' for :func:`out_of_range`."""
    shown = ', '.join(f'{v} ({n} px)' for v, n in list(bad.items())[:8])
    more = f' and {len(bad) - 8} more' if len(bad) > 8 else ''
    note = (' (after reduce_zero_label: file value - 1)' if reduce_zero_label else '')
    return (f'has values {shown}{more}{note} outside the {num_classes} classes '
            f'(0..{num_classes - 1}) that are not ignore_index {ignore_index}')


def _read_pil(path: str):
    """(PIL image fully decoded, None) or (None, problem)."""
    from PIL import Image
    if osp.getsize(path) == 0:
        return None, 'is empty (0 bytes)'
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy(), None
    except OSError as err:  # PIL's UnidentifiedImageError is an OSError
        text = str(err)
        if 'truncated' in text or 'broken' in text.lower():
            return None, 'is truncated (the file ends inside the image data)'
        return None, f'is not a readable image ({type(err).__name__}: {text})'


def pair_problems(img_path: str, seg_path: Optional[str], num_classes: Optional[int],
                  ignore_index: int = 255, reduce_zero_label: bool = False,
                  label_map: Optional[Dict[int, int]] = None) -> List[tuple]:
    """Every problem of one image and its label: a list of (path, kind,
    what), ``kind`` one of 'unreadable', 'missing', 'mode', 'size', 'values'.
    Decodes both files completely (truncation shows only then)."""
    problems = []
    if not osp.isfile(img_path):
        return [(img_path, 'missing', 'does not exist')]
    image, what = _read_pil(img_path)
    if what:
        problems.append((img_path, 'unreadable', what))
    if seg_path is None:
        return problems
    if not osp.isfile(seg_path):
        return problems + [(img_path, 'missing', f'has no label: {seg_path} does not exist')]
    label, what = _read_pil(seg_path)
    if what:
        return problems + [(seg_path, 'unreadable', what)]
    what = pil_mode_problem(label.mode)
    if what:
        problems.append((seg_path, 'mode', what))
    if image is not None and image.size != label.size:
        problems.append((seg_path, 'size',
                         f'is {label.size[1]}x{label.size[0]} (HxW), its image '
                         f'{img_path} is {image.size[1]}x{image.size[0]}'))
    if what is None and num_classes:
        mapped = map_labels(np.asarray(label), reduce_zero_label, label_map)
        bad = out_of_range(mapped, num_classes, ignore_index)
        if bad:
            problems.append((seg_path, 'values', describe_values(
                bad, num_classes, ignore_index, reduce_zero_label)))
    return problems


def check_loaded_label(results: dict, num_classes: Optional[int],
                       ignore_index: int = 255) -> None:
    """Raise :class:`SegInputError` when the label ``LoadAnnotations`` put in
    ``results`` is not a valid label map of its image: several channels,
    more than 8 bits (read from the PNG header), another size than the
    image (``ori_shape``) or values outside the classes (``num_classes``
    None: values not checked). Costs a bincount of the label and, for
    PNG files, a 26-byte read."""
    path = results.get('seg_map_path', '<label>')
    label = results['gt_seg_map']
    if label.ndim != 2:
        what = (f'has {label.shape[-1]} channels' if label.ndim == 3
                else f'has the shape {tuple(label.shape)} after loading')
        raise SegInputError(f'label {path} {what}; a label map must be single-channel '
                            '8-bit (one class id per pixel, PNG mode L or P); '
                            f'{CHECK_HINT}')
    if isinstance(path, str) and path.lower().endswith('.png') and osp.isfile(path):
        header = png_header(path)
        what = header and png_mode_problem(header)
        if what:
            raise SegInputError(f'label {path} {what}; {CHECK_HINT}')
    shape = results.get('ori_shape')
    if shape is not None and tuple(label.shape) != tuple(shape[:2]):
        raise SegInputError(
            f'label {path} is {label.shape[0]}x{label.shape[1]} (HxW), its image '
            f'{results.get("img_path", "")} is {shape[0]}x{shape[1]}; {CHECK_HINT}')
    if num_classes:
        bad = out_of_range(label, num_classes, ignore_index)
        if bad:
            raise SegInputError(
                f'label {path} ' + describe_values(
                    bad, num_classes, ignore_index, results.get('reduce_zero_label', False))
                + f'; fix the file or the classes/label_map; {CHECK_HINT}')


__all__ = ['SegInputError', 'CHECK_HINT', 'png_header', 'png_mode_problem',
           'pil_mode_problem', 'map_labels', 'out_of_range', 'describe_values',
           'pair_problems', 'check_loaded_label']
