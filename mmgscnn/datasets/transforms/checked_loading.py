"""mmseg's loading transforms with one-line errors that name the file.

``CheckedLoadImageFromFile`` and ``CheckedLoadAnnotations`` load exactly as
``LoadImageFromFile`` and ``LoadAnnotations`` do; a file that cannot be
read raises :class:`~mmgscnn.datasets.label_check.SegInputError` naming it,
and ``CheckedLoadAnnotations`` also checks the loaded label map
(:func:`~mmgscnn.datasets.label_check.check_loaded_label`: single channel,
8 bits, the image's size, values in ``0..num_classes-1`` or
``ignore_index``). The checks run on the data workers, per sample, on the
CPU (a bincount of the uint8 label and a 26-byte PNG header read).
``tools/train.py`` and ``tools/test.py`` use them in place of mmseg's in
every pipeline (see :mod:`mmgscnn.datasets.checked_pipelines`).
"""
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..label_check import CHECK_HINT, SegInputError, check_loaded_label


def _unreadable(what: str, path, err: Exception) -> SegInputError:
    if _is_empty(path):
        reason = 'is empty (0 bytes)'
    elif isinstance(err, FileNotFoundError):
        reason = 'does not exist'
    elif isinstance(err, AssertionError) and 'failed to load' in str(err):
        reason = 'cannot be decoded (truncated or not an image)'  # mmcv: decoder gave None
    else:
        text = str(err).strip().splitlines()
        reason = f'cannot be read ({type(err).__name__}: {text[0] if text else ""})'
    return SegInputError(f'{what} {path} {reason}; replace or remove the file; {CHECK_HINT}')


def _is_empty(path) -> bool:
    import os.path as osp
    return isinstance(path, str) and osp.isfile(path) and osp.getsize(path) == 0


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose failures (missing, empty, truncated or
    undecodable file) raise a :class:`SegInputError` naming the file."""

    def transform(self, results: dict) -> Optional[dict]:
        try:
            out = super().transform(results)
        except Exception as err:
            raise _unreadable('image', results.get('img_path'), err) from err
        return out


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """``LoadAnnotations`` that checks the label map it loads.

    Args:
        num_classes: classes of the model; label values must be
            ``0..num_classes-1`` or ``ignore_index`` after
            ``reduce_zero_label`` and ``label_map``. None: values are not
            checked (``tools/train.py``/``test.py`` fill it in from the
            model's decode head).
        ignore_index: the label of unlabelled pixels (mmseg: 255).
        Other arguments: mmseg's ``LoadAnnotations``.
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        try:
            super()._load_seg_map(results)
        except Exception as err:
            raise _unreadable('label', results.get('seg_map_path'), err) from err
        check_loaded_label(results, self.num_classes, self.ignore_index)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
