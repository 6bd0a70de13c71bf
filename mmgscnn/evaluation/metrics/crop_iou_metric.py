"""mIoU on centre crops: the distance-based evaluation of the Gated-SCNN paper.

The paper measures how accuracy changes towards the image centre, where
objects are small and far away: mIoU is computed again on centre crops that
leave out ``margin`` pixels on every side (its "crop factor"; on Cityscapes
0, 100, 200, 300 and 400 pixels).
"""
import logging
import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from .utils import pixel_values


@METRICS.register_module()
class CropIoUMetric(BaseMetric):
    """mIoU on centre crops shrunk by ``margins`` pixels from each side.

    For a margin m (pixels), an image of H x W is evaluated on rows
    m..H-m-1 and columns m..W-m-1. Intersection and union are counted per
    image with ``IoUMetric.intersect_and_union`` and summed over the dataset,
    so ``margin=0`` gives exactly IoUMetric's mIoU. A margin that leaves an
    empty crop (2m >= H or 2m >= W) for any image is reported as NaN, with a
    warning that names it.

    Args:
        margins: margins in pixels; with ``scale_margins`` they are given for
            an image ``reference_height`` pixels high. Keys name them as given:
            ``mIoU@crop0``, ``mIoU@crop100``, ...
        scale_margins: if True, an image H pixels high uses
            ``round(m * H / reference_height)`` pixels.
        reference_height: height the margins refer to (Cityscapes: 1024).
        ignore_index: label of pixels without ground truth.
        class_keys: also return the per-class IoU of every margin as
            ``IoU.<class>@crop<m>`` (percent), e.g. for thin-class reports.
        collect_device, prefix, collect_dir: as in mmengine's ``BaseMetric``.
    """

    def __init__(self,
                 margins: Sequence[float] = (0, 100, 200, 300, 400),
                 scale_margins: bool = False,
                 reference_height: int = 1024,
                 ignore_index: int = 255,
                 class_keys: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        margins = pixel_values(margins, 'CropIoUMetric.margins',
                               'margins=(0, 100, 200, 300, 400)')
        if reference_height <= 0:
            raise ValueError(f'CropIoUMetric.reference_height must be > 0, '
                             f'got {reference_height}')
        self.margins = margins
        self.scale_margins = scale_margins
        self.reference_height = reference_height
        self.ignore_index = ignore_index
        self.class_keys = class_keys

    def margin_pixels(self, height: int) -> list:
        """Margins in whole pixels for an image ``height`` pixels high."""
        if self.scale_margins:
            return [int(math.floor(m * height / self.reference_height + 0.5))
                    for m in self.margins]
        return [int(math.floor(m + 0.5)) for m in self.margins]

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Per sample: counts (M, 4, C) (intersection, union, predicted and
        GT area per margin and class, CPU) and a (M,) bool tensor, True where
        the margin leaves an empty crop."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data']
            pred = pred.reshape(pred.shape[-2:])
            gt = sample['gt_sem_seg']['data']
            gt = gt.reshape(gt.shape[-2:]).to(pred)
            if pred.shape != gt.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and ground truth '
                                 f'{tuple(gt.shape)} differ in size')
            h, w = gt.shape
            # float64: summed over a dataset, pixel counts pass float32's 2**24.
            counts = torch.zeros(len(self.margins), 4, num_classes, dtype=torch.float64)
            empty = torch.zeros(len(self.margins), dtype=torch.bool)
            for i, m in enumerate(self.margin_pixels(h)):
                if 2 * m >= h or 2 * m >= w:
                    empty[i] = True
                    continue
                crop = (slice(m, h - m), slice(m, w - m))
                counts[i] = torch.stack(IoUMetric.intersect_and_union(
                    pred[crop], gt[crop], num_classes, self.ignore_index))
            self.results.append((counts, empty))

    def key(self, margin: float) -> str:
        return f'mIoU@crop{margin:g}'

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mIoU@crop<m>`` (percent) per margin; per-class IoU to the log."""
        logger: MMLogger = MMLogger.get_current_instance()
        counts = torch.stack([r[0] for r in results]).sum(0)  # (M, 4, C)
        n_empty = torch.stack([r[1] for r in results]).sum(0)  # (M,)
        num_classes = counts.shape[-1]

        metrics = OrderedDict()
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        for margin, per_margin, empty in zip(self.margins, counts, n_empty.tolist()):
            if empty:
                print_log(f'CropIoUMetric: margin {margin:g} leaves an empty crop for '
                          f'{empty} of {len(results)} images (2 x margin >= image '
                          f'height or width{", after scaling" if self.scale_margins else ""}'
                          f'); {self.key(margin)} is NaN. Use smaller margins or '
                          'scale_margins=True.', logger, level=logging.WARNING)
                iou = np.full(num_classes, np.nan)
            else:
                iou = IoUMetric.total_area_to_metrics(*per_margin, ['mIoU'])['IoU']
            present = iou[~np.isnan(iou)]
            metrics[self.key(margin)] = float(np.round(present.mean() * 100, 2)) \
                if present.size else float('nan')
            table.add_column(f'IoU@crop{margin:g}', np.round(iou * 100, 2).tolist())
            if self.class_keys:
                for name, value in zip(self.dataset_meta['classes'], iou):
                    metrics[f'IoU.{name}@crop{margin:g}'] = float(np.round(value * 100, 2))
        print_log('per class IoU on centre crops (%):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics
