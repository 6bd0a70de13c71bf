"""Seconds per image of the boundary metrics on a Cityscapes-sized map pair.

``python tools/benchmark_boundary_metrics.py``: a 1024x2048 ground truth with
19 classes in irregular regions (the argmax of smooth random fields) and a
prediction whose regions are shifted by a few pixels, 1% of the ground truth
ignored. Prints a markdown table: BoundaryFScore at 3/5/9/12 px by the disk
dilations (the CUDA path, the CPU path before issue 23) and by the distance
path (the CPU path now: ``image_counts``), BoundaryIoUMetric, on the chosen
device; seconds are medians (after one warm-up run when --repeats > 1).
"""
import argparse
import time
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

from .metrics.boundary_fscore import BoundaryFScore
from .metrics.boundary_iou import band_areas


def street_like_pair(height: int = 1024, width: int = 2048, num_classes: int = 19,
                     seed: int = 0):
    """(pred, gt) (H, W) int64: argmax of smooth noise per class; the
    prediction's noise is perturbed, so its boundaries move a few pixels."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, num_classes, height // 64, width // 64, generator=gen)
    fine = 0.15 * torch.randn(1, num_classes, height // 16, width // 16, generator=gen)

    def labels(field):
        return F.interpolate(field, (height, width), mode='bilinear',
                             align_corners=False)[0].argmax(0)

    gt = labels(coarse)
    pred = labels(F.interpolate(coarse, (height // 16, width // 16), mode='bilinear',
                                align_corners=False) + fine)
    gt[torch.rand(height, width, generator=gen) < 0.01] = 255
    return pred, gt


def seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple:
    """Median (wall, CPU) seconds of ``fn`` over ``repeats`` runs, after one
    warm-up run when ``repeats`` > 1. CPU seconds are this process's
    (``time.process_time``): on a shared machine they do not count the time
    other processes take, so with one thread they are the figure to compare."""
    if repeats > 1:
        fn()
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return tuple(sorted(t[i] for t in times)[len(times) // 2] for i in (0, 1))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--size', type=int, nargs=2, default=(1024, 2048), metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--skip-dilation', action='store_true',
                        help='leave out the slow disk-dilation row on the CPU')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    pred, gt = (t.to(device) for t in street_like_pair(*args.size))
    metric = BoundaryFScore(tolerances=(3, 5, 9, 12))
    valid = gt != 255
    masked = torch.where(valid, pred, torch.full_like(pred, 255))
    radii = metric.radii(*gt.shape)
    rows = []
    if not args.skip_dilation:
        rows.append(('BoundaryFScore 3/5/9/12 px, disk dilations (CPU before; the CUDA path)',
                     lambda: metric.counts_by_dilation(masked, gt, valid, masked != 255, 19,
                                                       radii)))
    rows.append((f'BoundaryFScore 3/5/9/12 px, image_counts on {device.type}',
                 lambda: metric.image_counts(pred, gt, 19)))
    rows.append(('BoundaryIoUMetric, dilation ratio 0.02 (band 46 px)',
                 lambda: band_areas(pred, gt, 19, 255, 0.02)))
    print(f'device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, '
          f'{args.size[0]}x{args.size[1]}, 19 classes, median of {args.repeats}')
    print('| metric | wall s / image | CPU s / image | images / s (CPU s) |\n'
          '|---|---:|---:|---:|')
    times = [seconds(fn, args.repeats, device) for _, fn in rows]
    for (name, _), (wall, cpu) in zip(rows, times):
        print(f'| {name} | {wall:.3f} | {cpu:.3f} | {1 / cpu:.2f} |', flush=True)
    wall, cpu = (sum(t[i] for t in times[-2:]) for i in (0, 1))
    print(f'| BoundaryFScore + BoundaryIoUMetric (now) | {wall:.3f} | {cpu:.3f} | '
          f'{1 / cpu:.2f} |')
