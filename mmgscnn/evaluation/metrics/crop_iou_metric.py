"""mIoU at crop factors: the distance-based evaluation of the Gated-SCNN paper.

Far-away objects are small and lie near the vanishing point, so the paper
computes mIoU again on ever smaller crops around an approximate vanishing
point. On a 1024x2048 Cityscapes image it removes 100 px from the left, right
and bottom (not the top) and takes the centre of what remains (rows 0..923,
columns 100..1947; centre row 462, column 1024) as the vanishing point. Crop
factor c then removes c px from the top and bottom and 2c px from the left
and right of that region: a (924 - 2c) x (1848 - 4c) crop around the same
point. Factor 0 is that region, not the whole image. The paper reports crop
factors 0, 100, 200, 300 and 400.
"""
import logging
from collections import OrderedDict
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable
from torch import Tensor

from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from .boundary_fscore import CITYSCAPES_SIZE, round_half_up
from .utils import RefusesOutOfRangeLabels, pixel_values

#: Arguments of the former centred-crop version and what replaced them.
_REPLACED = dict(margins='crop_factors', scale_margins='reference_size',
                 reference_height='reference_size')


def class_areas(pred: Tensor, gt: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """(4, C) float32 on the input's device: intersection, union, predicted and
    ground-truth area per class, in pixels, leaving out pixels whose ground
    truth is ``ignore_index``. Same counts as ``IoUMetric.intersect_and_union``
    but without boolean indexing or ``.cpu()``, so no host-device sync."""
    left_out = torch.full_like(gt, -1)  # below histc's range: not counted
    valid = gt != ignore_index
    pred = torch.where(valid, pred, left_out)
    gt = torch.where(valid, gt, left_out)
    both = torch.where(pred == gt, gt, left_out)

    def area(label: Tensor) -> Tensor:
        return torch.histc(label.float(), bins=num_classes, min=0, max=num_classes - 1)

    inter, area_pred, area_gt = area(both), area(pred), area(gt)
    return torch.stack([inter, area_pred + area_gt - inter, area_pred, area_gt])


@METRICS.register_module()
class CropIoUMetric(RefusesOutOfRangeLabels, BaseMetric):
    """mIoU on the paper's crops around the vanishing point, per crop factor.

    Crops are defined on an image of ``reference_size`` (Hr, Wr): for crop
    factor c, border b, rows ``c .. Hr - b - c`` and columns
    ``b + 2c .. Wr - b - 2c`` (end excluded). On an H x W image the row edges
    are scaled by H / Hr and the column edges by W / Wr and rounded to the
    nearest pixel, so a crop covers the same fraction of the height and of
    the width on every image, whatever its size or aspect ratio (CamVid
    360x480, factor 400: rows 141 to 183 and columns 211 to 268, inclusive).
    Intersection and union are counted per image and summed over the dataset.

    Keys (percent): ``mIoU@crop<c>``; with ``class_keys`` also
    ``IoU.<class>@crop<c>``. Per-class IoU of every crop goes to the log.

    Args:
        crop_factors: crop factors c in pixels of the reference image. Each
            must leave a crop: c < (Hr - b) / 2 and c < (Wr - 2b) / 4
            (below 462 at 1024x2048 with b = 100).
        reference_size: (Hr, Wr) the crop factors and border are given for;
            the paper's (1024, 2048), i.e. unscaled on Cityscapes.
        vp_border: b, pixels of the reference image removed from the left,
            right and bottom (not the top) before the centre is taken as
            the vanishing point; the paper's 100 puts it at row 462 of 1024,
            a little above the centre, as for Cityscapes' camera. With 0 the
            crops are centred on the image and crop factor 0 is the whole image.
        ignore_index: label of pixels without ground truth.
        class_keys: also return the per-class IoU of every crop factor.
        collect_device, prefix, collect_dir: as in mmengine's ``BaseMetric``.
    """

    # '' and not None: keys stay unprefixed ('mIoU@crop0', ...) and mmengine does not
    # warn 'The prefix is not set'; a config's prefix=... still applies.
    default_prefix: Optional[str] = ''

    def __init__(self,
                 crop_factors: Sequence[Real] = (0, 100, 200, 300, 400),
                 reference_size: Tuple[int, int] = CITYSCAPES_SIZE,
                 vp_border: Real = 100,
                 ignore_index: int = 255,
                 class_keys: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 **unknown) -> None:
        if unknown:
            replaced = {k: _REPLACED[k] for k in unknown if k in _REPLACED}
            hint = ('; the centred crops with margins were replaced by the paper\'s '
                    f'crops around the vanishing point: use {replaced} (see the class '
                    'docstring)' if replaced else '')
            raise TypeError(f'CropIoUMetric got unknown arguments {sorted(unknown)}{hint}')
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        self.crop_factors = pixel_values(crop_factors, 'CropIoUMetric.crop_factors',
                                         'crop_factors=(0, 100, 200, 300, 400)')
        size = tuple(reference_size) if isinstance(reference_size, Sequence) else ()
        if len(size) != 2 or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0
                                 for s in size):
            raise ValueError('CropIoUMetric.reference_size must be two positive integers '
                             f'(height, width), e.g. (1024, 2048); got {reference_size!r}')
        if not isinstance(vp_border, Real) or isinstance(vp_border, bool) or vp_border < 0:
            raise ValueError(f'CropIoUMetric.vp_border must be a number >= 0 (pixels), '
                             f'got {vp_border!r}')
        self.reference_size = size
        self.vp_border = vp_border
        self.ignore_index = ignore_index
        self.class_keys = class_keys
        ref_h, ref_w = self.reference_size
        for c, (top, bottom, left, right) in zip(self.crop_factors, self.reference_boxes()):
            if bottom <= top or right <= left:
                raise ValueError(
                    f'CropIoUMetric: crop factor {c:g} leaves no pixel of the {ref_h}x{ref_w} '
                    f'reference image with vp_border={vp_border:g} (it needs c < '
                    f'{(ref_h - vp_border) / 2:g} for the rows and c < '
                    f'{(ref_w - 2 * vp_border) / 4:g} for the columns); use smaller crop '
                    'factors or a smaller vp_border')

    def reference_boxes(self) -> List[Tuple[Real, Real, Real, Real]]:
        """(top, bottom, left, right) of every crop on the reference image,
        in pixels, end excluded."""
        ref_h, ref_w = self.reference_size
        b = self.vp_border
        return [(c, ref_h - b - c, b + 2 * c, ref_w - b - 2 * c) for c in self.crop_factors]

    def crop_boxes(self, height: int, width: int) -> List[Tuple[int, int, int, int]]:
        """(top, bottom, left, right) of every crop on a ``height`` x ``width``
        image, whole pixels, end excluded; raises if one is empty."""
        ref_h, ref_w = self.reference_size
        boxes = []
        for c, (top, bottom, left, right) in zip(self.crop_factors, self.reference_boxes()):
            box = (round_half_up(top * height / ref_h), round_half_up(bottom * height / ref_h),
                   round_half_up(left * width / ref_w), round_half_up(right * width / ref_w))
            if box[1] <= box[0] or box[3] <= box[2]:
                raise ValueError(
                    f'CropIoUMetric: crop factor {c:g} (given at {ref_h}x{ref_w}) leaves no '
                    f'pixel of a {height}x{width} image after scaling (rows {box[0]}..'
                    f'{box[1]}, columns {box[2]}..{box[3]}); use smaller crop factors')
            boxes.append(box)
        return boxes

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Per sample (``pred_sem_seg``, ``gt_sem_seg`` (1, H, W)): a (F, 4, C)
        float32 tensor on the prediction's device with intersection, union,
        predicted and ground-truth area per crop factor and class."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data']
            pred = pred.reshape(pred.shape[-2:])
            gt = sample['gt_sem_seg']['data']
            self.count_out_of_range(gt, num_classes, sample)
            gt = gt.reshape(gt.shape[-2:]).to(pred)
            if pred.shape != gt.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and ground truth '
                                 f'{tuple(gt.shape)} differ in size')
            self.results.append(torch.stack([
                class_areas(pred[top:bottom, left:right], gt[top:bottom, left:right],
                            num_classes, self.ignore_index)
                for top, bottom, left, right in self.crop_boxes(*gt.shape)]))

    def key(self, crop_factor: Real) -> str:
        return f'mIoU@crop{crop_factor:g}'

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mIoU@crop<c>`` (percent) per crop factor; per-class IoU to the log."""
        logger: MMLogger = MMLogger.get_current_instance()
        # float64: summed over a dataset, pixel counts pass float32's 2**24.
        counts = torch.stack(results).double().sum(0)  # (F, 4, C)
        classes = list(self.dataset_meta['classes'])

        metrics = OrderedDict()
        table = PrettyTable()
        table.add_column('Class', classes)
        for c, areas in zip(self.crop_factors, counts):
            iou = IoUMetric.total_area_to_metrics(*areas, ['mIoU'])['IoU']
            present = iou[~np.isnan(iou)]
            if present.size:
                metrics[self.key(c)] = float(np.round(present.mean() * 100, 2))
            else:
                print_log(f'CropIoUMetric: the crops of crop factor {c:g} hold no labelled '
                          f'pixel in any image; {self.key(c)} is NaN', logger,
                          level=logging.WARNING)
                metrics[self.key(c)] = float('nan')
            table.add_column(f'IoU@crop{c:g}', np.round(iou * 100, 2).tolist())
            if self.class_keys:
                for name, value in zip(classes, iou):
                    metrics[f'IoU.{name}@crop{c:g}'] = float(np.round(value * 100, 2))
        print_log('per class IoU at each crop factor (%):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics
