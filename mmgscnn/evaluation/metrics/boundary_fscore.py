"""Boundary F-score (the boundary accuracy measure of the Gated-SCNN paper).

Boundaries come from comparisons with the four neighbours, vectorised on the
device of the predictions. The tolerance test then takes one of two paths
that give the same counts:

- CUDA: boundary maps dilated by a Euclidean disk built from horizontal
  max-pools (see :func:`disk_dilate`), all on the GPU.
- CPU: the squared distance from every boundary pixel to the nearest boundary
  pixel of the same class in the other map, by a k-d tree over the boundary
  pixels of each class (scipy); every tolerance is then a threshold on that one
  distance (:func:`disk_threshold`). 0.5 instead of 129 CPU seconds on a
  1024x2048 image with 19 classes (docs/benchmarks.md).
"""
import logging
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable
from torch import Tensor

from mmseg.registry import METRICS
from .utils import RefusesOutOfRangeLabels, pixel_values

#: Image size (H, W) at which ``tolerances`` are given when they are scaled.
CITYSCAPES_SIZE = (1024, 2048)


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves upwards (2.5 -> 3, unlike ``round``)."""
    return int(math.floor(x + 0.5))


def class_boundaries(label: Tensor, valid: Tensor) -> Tensor:
    """Boundary pixels of a label map.

    A pixel is a boundary pixel when it is valid and one of its 4-neighbours
    inside the image is valid and carries another label. Neighbours outside
    the image and invalid (ignored) neighbours never make a boundary.

    Args:
        label: (H, W) integer labels.
        valid: (H, W) bool, False where the label is ignored.

    Returns:
        (H, W) bool boundary mask, on ``label``'s device.
    """
    boundary = torch.zeros_like(valid)
    # An edge between two vertically / horizontally adjacent pixels marks both.
    vert = valid[1:, :] & valid[:-1, :] & (label[1:, :] != label[:-1, :])
    boundary[1:, :] |= vert
    boundary[:-1, :] |= vert
    horiz = valid[:, 1:] & valid[:, :-1] & (label[:, 1:] != label[:, :-1])
    boundary[:, 1:] |= horiz
    boundary[:, :-1] |= horiz
    return boundary


def disk_half_widths(radius: float) -> List[tuple]:
    """``(dy, w)`` for dy = 0..floor(radius): the disk of ``radius`` pixels
    holds (dx, dy) with |dx| <= w = floor(sqrt(radius^2 - dy^2))."""
    if float(radius).is_integer():
        r = int(radius)
        return [(dy, math.isqrt(r * r - dy * dy)) for dy in range(r + 1)]
    # A small epsilon keeps exact squares (e.g. r=2.5, dy=1.5) inside the disk.
    return [(dy, int(math.floor(math.sqrt(radius * radius - dy * dy) + 1e-9)))
            for dy in range(int(math.floor(radius)) + 1)]


def disk_dilate(mask: Tensor, radius: float) -> Tensor:
    """Dilate binary maps by a Euclidean disk.

    Out[p] is True when some True pixel q of ``mask`` has ||p - q|| <= radius
    (distance between pixel centres, in pixels). The disk is the union, over
    vertical offsets dy, of horizontal segments of half-width
    ``floor(sqrt(r^2 - dy^2))``: one horizontal max-pool per dy, shifted up
    and down by dy. Pixels outside the frame take no part.

    Args:
        mask: (N, H, W) bool.
        radius: disk radius in pixels (>= 0; 0 returns ``mask``).

    Returns:
        (N, H, W) bool, on ``mask``'s device.
    """
    if radius < 0:
        raise ValueError(f'radius must be >= 0 pixels, got {radius}')
    if radius == 0 or mask.numel() == 0:
        return mask.clone()
    # max_pool2d needs floating point; half halves the memory on GPUs.
    dtype = torch.float16 if mask.is_cuda else torch.float32
    x = mask.unsqueeze(1).to(dtype)  # (N, 1, H, W)
    out = torch.zeros_like(x)
    for dy, half in disk_half_widths(radius):
        # max_pool2d pads with -inf, so the frame adds nothing.
        row = F.max_pool2d(x, (1, 2 * half + 1), stride=1, padding=(0, half)) \
            if half > 0 else x
        if dy == 0:
            out = torch.maximum(out, row)
        else:
            out[..., dy:, :] = torch.maximum(out[..., dy:, :], row[..., :-dy, :])
            out[..., :-dy, :] = torch.maximum(out[..., :-dy, :], row[..., dy:, :])
    return out[:, 0] > 0


def disk_threshold(radius: float) -> Optional[int]:
    """The largest squared distance dx^2 + dy^2 inside the disk of
    :func:`disk_half_widths`, when that disk is exactly the offsets with
    dx^2 + dy^2 <= it (so matching within ``radius`` is a threshold on the
    squared distance); None otherwise."""
    widths = dict(disk_half_widths(radius))
    limit = max(dy * dy + w * w for dy, w in widths.items())
    for dy in range(math.isqrt(limit) + 1):
        if widths.get(dy) != math.isqrt(limit - dy * dy):
            return None
    return limit


def nearest_squared_distances(points: np.ndarray, targets: np.ndarray,
                              limit: int) -> np.ndarray:
    """(N,) float64 squared distance (pixels^2, exact integers) from each of
    the (N, 2) ``points`` to the nearest of the (M, 2) ``targets``; inf
    where none lies within sqrt(``limit``)."""
    if not len(points) or not len(targets):
        return np.full(len(points), np.inf)
    dist, _ = cKDTree(targets).query(points, distance_upper_bound=math.sqrt(limit) + 0.5)
    return np.rint(dist * dist)


def boundary_pixels_by_class(boundary: Tensor, label: Tensor,
                             num_classes: int) -> List[np.ndarray]:
    """(N_c, 2) row/column of the boundary pixels of every class c."""
    yx = boundary.nonzero().numpy()
    cls = label[boundary].numpy()
    order = np.argsort(cls, kind='stable')
    yx, cls = yx[order], cls[order]
    ends = np.searchsorted(cls, np.arange(num_classes + 1))
    return [yx[ends[c]:ends[c + 1]] for c in range(num_classes)]


@METRICS.register_module()
class BoundaryFScore(RefusesOutOfRangeLabels, BaseMetric):
    """Per-class boundary F-score at several distance tolerances.

    Boundaries, per image and class c: the pixels of class c with a
    4-neighbour inside the image that is valid and not c. The prediction is
    set to ``ignore_index`` wherever the ground truth is; ignored pixels are
    never boundary and never make one (nor do prediction pixels equal to
    ``ignore_index``).

    Matching: a predicted boundary pixel of class c is matched when a ground
    truth boundary pixel of class c lies within the tolerance (Euclidean
    distance <= d pixels); a ground truth boundary pixel is matched the same
    way against the predicted boundary of c.

    Aggregation: each image gives counts only, a (T, C, 4) int64 tensor
    (T tolerances, C classes): matched predicted, total predicted, matched
    GT, total GT boundary pixels. From counts, P = matched_pred / total_pred,
    R = matched_gt / total_gt, F = 2PR / (P + R); a class with neither GT nor
    predicted boundary pixels gets NaN and is left out of the mean (as
    IoUMetric does for absent classes); a class with predicted but no GT
    boundary, or GT but no predicted boundary, gets F = 0. So a class absent
    from both maps can never count as a perfect score.

    - ``average='dataset'`` (default): the counts are summed over the whole
      dataset per class and tolerance, then turned into F. Every boundary
      pixel weighs the same, so an image where a class has a few boundary
      pixels moves its score little.
    - ``average='image'``: F per image and class, then the mean over the
      images where the class has a boundary in either map, per class. The
      official Gated-SCNN evaluation averages per image like this, so use it
      to compare with the paper's table; unlike that code, an image where a
      class appears in neither map is left out of the class's mean instead
      of scoring F = 1.

    The result ``mBF@<d>px`` is the mean F over classes, in percent
    (2 decimals); a per-class table goes to the log.

    Args:
        tolerances: distance tolerances in pixels; with ``scale_tolerances``
            they are given at Cityscapes size (1024x2048). The keys name them
            as given.
        scale_tolerances: if True, each image uses
            ``max(1, round(d * diag(H, W) / diag(1024, 2048)))`` pixels.
        ignore_index: label of pixels without ground truth.
        collect_device: 'cpu' or 'gpu', for gathering results across ranks.
        average: ``'dataset'`` (counts summed over the dataset) or
            ``'image'`` (mean of per-image F, as the official evaluation).
        prefix: prefix of the result keys (``prefix/mBF@3px``).
        collect_dir: folder for gathering on 'cpu' (default: a temp folder).
    """

    # '' and not None: keys stay unprefixed ('mBF@3px', ...) and mmengine does not
    # warn 'The prefix is not set'; a config's prefix=... still applies.
    default_prefix: Optional[str] = ''

    def __init__(self,
                 tolerances: Sequence[float] = (3, 5, 9, 12),
                 scale_tolerances: bool = False,
                 ignore_index: int = 255,
                 average: str = 'dataset',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        tolerances = pixel_values(tolerances, 'BoundaryFScore.tolerances',
                                  'tolerances=(3, 5, 9, 12)')
        if average not in ('dataset', 'image'):
            raise ValueError("BoundaryFScore.average must be 'dataset' (counts summed "
                             "over the dataset) or 'image' (mean of per-image F, as the "
                             f"official Gated-SCNN evaluation), got {average!r}")
        self.tolerances = tolerances
        self.scale_tolerances = scale_tolerances
        self.average = average
        self.ignore_index = ignore_index

    def radii(self, height: int, width: int) -> List[float]:
        """Tolerances in pixels for an image of ``height`` x ``width``."""
        if not self.scale_tolerances:
            return list(self.tolerances)
        ratio = math.hypot(height, width) / math.hypot(*CITYSCAPES_SIZE)
        return [max(1, round_half_up(t * ratio)) for t in self.tolerances]

    def image_counts(self, pred: Tensor, gt: Tensor, num_classes: int) -> Tensor:
        """Boundary counts of one image.

        Args:
            pred: (H, W) predicted labels.
            gt: (H, W) ground truth labels (``ignore_index`` where unknown).
            num_classes: C.

        Returns:
            (T, C, 4) int64 on the CPU: matched predicted, total predicted,
            matched GT, total GT boundary pixels, per tolerance and class.
        """
        if pred.shape != gt.shape:
            raise ValueError(f'prediction {tuple(pred.shape)} and ground truth '
                             f'{tuple(gt.shape)} differ in size')
        gt = gt.to(pred.device).long()
        pred = pred.long()
        gt_valid = gt != self.ignore_index
        pred = torch.where(gt_valid, pred, torch.full_like(pred, self.ignore_index))
        pred_valid = pred != self.ignore_index

        radii = self.radii(*gt.shape)
        limits = [disk_threshold(r) for r in radii]
        if not pred.is_cuda and None not in limits:
            return self.counts_by_distance(pred, gt, gt_valid, pred_valid, num_classes,
                                           limits)
        return self.counts_by_dilation(pred, gt, gt_valid, pred_valid, num_classes, radii)

    @staticmethod
    def counts_by_dilation(pred: Tensor, gt: Tensor, gt_valid: Tensor, pred_valid: Tensor,
                           num_classes: int, radii: List[float]) -> Tensor:
        """:meth:`image_counts` on the device: boundary maps dilated by the
        disk of every radius (the CUDA path)."""
        classes = torch.arange(num_classes, device=pred.device)[:, None, None]
        gt_b = class_boundaries(gt, gt_valid)[None] & (gt[None] == classes)
        pred_b = class_boundaries(pred, pred_valid)[None] & (pred[None] == classes)

        counts = torch.zeros(len(radii), num_classes, 4, dtype=torch.long,
                             device=pred.device)
        total_pred = pred_b.sum((1, 2))
        total_gt = gt_b.sum((1, 2))
        both = torch.cat([gt_b, pred_b])  # (2C, H, W)
        dilated = {}
        for i, radius in enumerate(radii):
            if radius not in dilated:
                dilated[radius] = disk_dilate(both, radius)
            near_gt, near_pred = dilated[radius][:num_classes], dilated[radius][num_classes:]
            counts[i, :, 0] = (pred_b & near_gt).sum((1, 2))
            counts[i, :, 1] = total_pred
            counts[i, :, 2] = (gt_b & near_pred).sum((1, 2))
            counts[i, :, 3] = total_gt
        return counts.cpu()

    @staticmethod
    def counts_by_distance(pred: Tensor, gt: Tensor, gt_valid: Tensor, pred_valid: Tensor,
                           num_classes: int, limits: List[int]) -> Tensor:
        """:meth:`image_counts` on the CPU: one nearest-distance query per
        class and side, thresholded at every tolerance's squared radius
        ``limits`` (T,)."""
        gt_pts = boundary_pixels_by_class(class_boundaries(gt, gt_valid), gt, num_classes)
        pred_pts = boundary_pixels_by_class(class_boundaries(pred, pred_valid), pred,
                                            num_classes)
        counts = np.zeros((len(limits), num_classes, 4), np.int64)
        bounds = np.asarray(limits, np.float64)[:, None]
        for c in range(num_classes):
            to_gt = nearest_squared_distances(pred_pts[c], gt_pts[c], max(limits))
            to_pred = nearest_squared_distances(gt_pts[c], pred_pts[c], max(limits))
            counts[:, c, 0] = (to_gt[None] <= bounds).sum(1)
            counts[:, c, 1] = len(pred_pts[c])
            counts[:, c, 2] = (to_pred[None] <= bounds).sum(1)
            counts[:, c, 3] = len(gt_pts[c])
        return torch.from_numpy(counts)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Store the (T, C, 4) counts of every sample (``pred_sem_seg`` and
        ``gt_sem_seg`` (1, H, W) at the original size)."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data']
            gt = sample['gt_sem_seg']['data']
            self.count_out_of_range(gt, num_classes, sample)
            self.results.append(self.image_counts(
                pred.reshape(pred.shape[-2:]), gt.reshape(gt.shape[-2:]), num_classes))

    @staticmethod
    def counts_to_scores(counts: np.ndarray) -> Dict[str, np.ndarray]:
        """Precision, recall and F per tolerance and class from (..., T, C, 4)
        counts (summed, or one set per image); each (..., T, C), NaN where a
        class has no boundary at all, 0 where only one side has any."""
        counts = np.asarray(counts, dtype=np.float64)
        matched_pred, total_pred, matched_gt, total_gt = np.moveaxis(counts, -1, 0)
        with np.errstate(divide='ignore', invalid='ignore'):
            precision = np.where(total_pred > 0, matched_pred / total_pred, 0.0)
            recall = np.where(total_gt > 0, matched_gt / total_gt, 0.0)
            fscore = np.where(precision + recall > 0,
                              2 * precision * recall / (precision + recall), 0.0)
        absent = (total_pred == 0) & (total_gt == 0)
        for arr in (precision, recall, fscore):
            arr[absent] = np.nan
        return dict(precision=precision, recall=recall, fscore=fscore)

    def key(self, tolerance: float) -> str:
        return f'mBF@{tolerance:g}px'

    def class_scores(self, results: list) -> np.ndarray:
        """(T, C) F per tolerance and class from the images' (T, C, 4)
        counts, aggregated as ``average`` says; NaN for absent classes."""
        counts = torch.stack([torch.as_tensor(r) for r in results]).numpy()
        if self.average == 'dataset':
            return self.counts_to_scores(counts.sum(0))['fscore']
        per_image = self.counts_to_scores(counts)['fscore']  # (N, T, C)
        present = ~np.isnan(per_image)
        total = np.where(present, per_image, 0.0).sum(0)
        n = present.sum(0)
        with np.errstate(divide='ignore', invalid='ignore'):
            return np.where(n > 0, total / n, np.nan)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mBF@<d>px`` (percent) for every tolerance."""
        logger: MMLogger = MMLogger.get_current_instance()
        fscore = self.class_scores(results)  # (T, C)

        metrics = OrderedDict()
        for t, per_class in zip(self.tolerances, fscore):
            present = per_class[~np.isnan(per_class)]
            metrics[self.key(t)] = float(np.round(present.mean() * 100, 2)) \
                if present.size else float('nan')

        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        for t, per_class in zip(self.tolerances, fscore):
            table.add_column(f'BF@{t:g}px', np.round(per_class * 100, 2).tolist())
        if self.scale_tolerances:
            print_log('boundary F-score tolerances are scaled with the image '
                      'diagonal (given at 1024x2048)', logger)
        print_log(f'per class boundary F-score (%, averaged per {self.average}):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        if not np.isfinite(fscore).any():
            print_log('BoundaryFScore: no class has a boundary in the ground truth or '
                      'the prediction of any image; every mBF is NaN', logger,
                      level=logging.WARNING)
        return metrics
