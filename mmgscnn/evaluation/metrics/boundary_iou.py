"""Boundary IoU (Cheng et al., CVPR 2021) for semantic segmentation.

The boundary band of a binary mask M is M minus its erosion by a 3x3 square
repeated d times, the image frame counting as outside. Eroding d times by a
3x3 square is one erosion by a (2d+1)x(2d+1) square, which is separable: a
pixel survives when the run of its class along its row, and then along its
column, reaches d pixels on both sides. Because classes partition the pixels,
the runs of one label map give the bands of all classes at once (no per-class
loop, no one-hot stack); runs come from ``cummax`` over positions (:func:`reach_both_ways`), so all the
work stays on the device of the predictions.
"""
import logging
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable
from torch import Tensor

from mmseg.registry import METRICS
from .utils import RefusesOutOfRangeLabels

NO_CLASS = -1


def band_width(height: int, width: int, dilation_ratio: float) -> int:
    """d = max(1, round(dilation_ratio * diagonal)) pixels (Python's round,
    as the reference code)."""
    return max(1, int(round(dilation_ratio * (height ** 2 + width ** 2) ** 0.5)))


def reach_both_ways(label: Tensor, d: int) -> Tensor:
    """(..., H, W) bool: pixels whose run of equal labels along the last dim
    holds the d pixels on each side (the frame ends runs).

    The run of pixel x + d starts at or before x - d exactly when x - d .. x + d
    are one run, so one ``cummax`` of run starts (positions from the left)
    gives both sides, without a reversed scan."""
    width = label.shape[-1]
    first = torch.ones_like(label, dtype=torch.bool)
    first[..., 1:] = label[..., 1:] != label[..., :-1]
    pos = torch.arange(width, dtype=torch.int32, device=label.device).expand_as(label)
    start = torch.cummax(torch.where(first, pos, torch.zeros_like(pos)), -1).values
    kept = torch.zeros_like(first)
    if d < width:
        kept[..., :width - d] = (pos - start)[..., d:] >= 2 * d
    return kept


def boundary_bands(label: Tensor, d: int) -> Tensor:
    """Boundary band of every class of label maps.

    Args:
        label: (..., H, W) integer labels, ``NO_CLASS`` (-1) where a pixel
            belongs to no class.
        d: band width in pixels (>= 1).

    Returns:
        (..., H, W) labels: the class where the pixel lies in its class's
        band, ``NO_CLASS`` elsewhere.
    """
    # Columns first, as rows of the transposed map (cummax along the contiguous
    # dim is several times faster), then rows; the order does not matter.
    columns = label.transpose(-1, -2).contiguous()
    kept_in_columns = torch.where(reach_both_ways(columns, d), columns,
                                  torch.full_like(columns, NO_CLASS))
    kept_in_columns = kept_in_columns.transpose(-1, -2).contiguous()
    interior = reach_both_ways(kept_in_columns, d) & (kept_in_columns != NO_CLASS)
    return torch.where(interior, torch.full_like(label, NO_CLASS), label)


def band_areas(pred: Tensor, gt: Tensor, num_classes: int, ignore_index: int,
               dilation_ratio: float) -> Tensor:
    """(2, C) float32 on the prediction's device: intersection and union of
    the ground-truth and predicted bands per class, in pixels. Pixels ignored
    in the ground truth belong to no class in either map; predicted labels
    outside 0..C-1 too."""
    # int32: labels and positions in half the bytes of int64 (the scans are memory-bound)
    gt = gt.to(pred.device, torch.int32)
    pred = pred.to(torch.int32)
    none = torch.full_like(gt, NO_CLASS)
    valid = gt != ignore_index
    gt = torch.where(valid, gt, none)
    pred = torch.where(valid & (pred >= 0) & (pred < num_classes), pred, none)
    gt_band, pred_band = boundary_bands(torch.stack([gt, pred]),
                                        band_width(*gt.shape, dilation_ratio))

    def area(label: Tensor) -> Tensor:  # NO_CLASS is below histc's range
        return torch.histc(label.float(), bins=num_classes, min=0, max=num_classes - 1)

    inter = area(torch.where(gt_band == pred_band, gt_band, none))
    return torch.stack([inter, area(gt_band) + area(pred_band) - inter])


@METRICS.register_module()
class BoundaryIoUMetric(RefusesOutOfRangeLabels, BaseMetric):
    """Per-class Boundary IoU, accumulated over the dataset.

    Per class c, the band of c in the ground truth and in the prediction (see
    :func:`boundary_bands`; d = max(1, round(dilation_ratio * diagonal)) per
    image); their intersection and union in pixels are summed over the
    dataset, and BIoU_c = intersection / union. ``mBIoU`` (percent, 2
    decimals) is the mean over classes whose union is not empty; a per-class
    table goes to the log as ``IoUMetric`` prints it.

    Args:
        dilation_ratio: band width as a fraction of the image diagonal
            (0.02: 46 px at 1024x2048, 12 px at 360x480).
        ignore_index: label of pixels without ground truth.
        collect_device, prefix, collect_dir: as in mmengine's ``BaseMetric``.
    """

    # '' and not None: the key stays 'mBIoU' and mmengine does not warn.
    default_prefix: Optional[str] = ''

    def __init__(self,
                 dilation_ratio: float = 0.02,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        if isinstance(dilation_ratio, bool) or not isinstance(dilation_ratio, (int, float)) \
                or not 0 < dilation_ratio < 1:
            raise ValueError('BoundaryIoUMetric.dilation_ratio must be a number in (0, 1), '
                             f'a fraction of the image diagonal (e.g. 0.02); '
                             f'got {dilation_ratio!r}')
        self.dilation_ratio = float(dilation_ratio)
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Per sample (``pred_sem_seg``, ``gt_sem_seg`` (1, H, W)): the (2, C)
        band intersection and union, kept on the device (no sync)."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data']
            gt = sample['gt_sem_seg']['data']
            self.count_out_of_range(gt, num_classes, sample)
            pred, gt = pred.reshape(pred.shape[-2:]), gt.reshape(gt.shape[-2:])
            if pred.shape != gt.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and ground truth '
                                 f'{tuple(gt.shape)} differ in size')
            self.results.append(band_areas(pred, gt, num_classes, self.ignore_index,
                                           self.dilation_ratio))

    def class_scores(self, results: list) -> np.ndarray:
        """(C,) BIoU per class from the images' (2, C) areas; NaN where the
        union is empty."""
        # float64: summed over a dataset, pixel counts pass float32's 2**24.
        inter, union = torch.stack([torch.as_tensor(r).cpu() for r in results]
                                   ).double().sum(0).numpy()
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(union > 0, inter / union, np.nan)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mBIoU`` (percent); per-class BIoU to the log."""
        logger: MMLogger = MMLogger.get_current_instance()
        biou = self.class_scores(results)
        present = biou[~np.isnan(biou)]
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        table.add_column('BIoU', np.round(biou * 100, 2).tolist())
        print_log(f'per class Boundary IoU (%, dilation ratio {self.dilation_ratio:g}):',
                  logger)
        print_log('\n' + table.get_string(), logger=logger)
        if not present.size:
            print_log('BoundaryIoUMetric: no class is in the ground truth or the '
                      'prediction of any image; mBIoU is NaN', logger, level=logging.WARNING)
        return OrderedDict(mBIoU=float(np.round(present.mean() * 100, 2))
                           if present.size else float('nan'))
