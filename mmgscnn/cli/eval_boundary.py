"""Score any model's PNG label maps against ground truth (``tools/eval_boundary.py``):
mIoU, boundary F-score at pixel tolerances, Boundary IoU and, on request, the
crop-factor mIoU, with the project's metrics (``IoUMetric``, ``BoundaryFScore``,
``BoundaryIoUMetric``, ``CropIoUMetric``: their ``process`` and
``compute_metrics``, nothing computed twice).

Files: every ``*.png`` under ``--gt`` (searched recursively) is matched with
the ``*.png`` of the same path relative to ``--pred`` (so ``gt/a/b.png`` with
``pred/a/b.png``). Both are single-channel label maps (8- or 16-bit grey, or
palette PNGs read as indices). A ground-truth file without prediction, or
with a prediction of another size, is named; the other files are still
scored and the exit status is 1. So is an unreadable file or an RGB one.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

#: The label map files looked for under --pred and --gt.
PRED_SUFFIX = GT_SUFFIX = '.png'


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='mIoU, boundary F-score (mBF@<t>px) and Boundary IoU (mBIoU) of a '
        'folder of predicted PNG label maps against a folder of ground-truth PNG label '
        'maps, matched by relative path')
    p.add_argument('--pred', required=True, help='folder of predicted label maps (*.png)')
    p.add_argument('--gt', required=True, help='folder of ground-truth label maps (*.png)')
    p.add_argument('--num-classes', type=int, required=True, help='number of classes C')
    p.add_argument('--ignore-index', type=int, default=255,
                   help='ground-truth label of unlabelled pixels (default 255)')
    p.add_argument('--tolerances', type=float, nargs='+', default=[3, 5, 9, 12],
                   help='boundary F-score tolerances in pixels (default 3 5 9 12)')
    p.add_argument('--dilation-ratio', type=float, default=0.02,
                   help='Boundary IoU band width as a fraction of the image diagonal '
                   '(default 0.02)')
    p.add_argument('--classes', nargs='+', default=None, metavar='NAME',
                   help='class names, C of them (default 0 .. C-1)')
    p.add_argument('--reduce-zero-label', action='store_true',
                   help='ground truth 0 is unlabelled: 0 -> ignore, k -> k-1 (as mmseg\'s '
                   'reduce_zero_label); predictions are taken as already reduced')
    p.add_argument('--crop-factors', type=float, nargs='+', default=None,
                   help='also mIoU at the paper\'s crops around the vanishing point '
                   '(CropIoUMetric, e.g. 0 100 200 300 400, given at 1024x2048)')
    p.add_argument('--out', default=None, help='write the results as JSON here')
    p.add_argument('--markdown', default=None, help='write the tables as Markdown here')
    p.add_argument('--workers', type=int, default=0,
                   help='worker processes (default 0: this one)')
    args = p.parse_args(argv)
    if args.num_classes < 1:
        p.error(f'--num-classes must be >= 1, got {args.num_classes}')
    if args.classes is not None and len(args.classes) != args.num_classes:
        p.error(f'--classes gives {len(args.classes)} names for --num-classes '
                f'{args.num_classes}; give one name per class')
    for flag in ('pred', 'gt'):
        if not osp.isdir(getattr(args, flag)):
            p.error(f'--{flag} {getattr(args, flag)} is not a folder')
    return args


def label_files(folder: str, suffix: str) -> Dict[str, str]:
    """{path relative to ``folder`` without ``suffix``: path} of every file
    ending in ``suffix`` under ``folder``."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name.endswith(suffix):
                path = osp.join(root, name)
                found[osp.relpath(path, folder)[:-len(suffix)]] = path
    return found


def read_label(path: str) -> np.ndarray:
    """(H, W) int64 labels of a single-channel PNG (palette indices as they are)."""
    from PIL import Image
    with Image.open(path) as img:
        if img.mode not in ('L', 'P', 'I', 'I;16'):
            raise ValueError(f'{path}: a {img.mode} image, not a label map; save one '
                             'channel of class indices (grey or palette PNG)')
        return np.asarray(img).astype(np.int64)


def build_metrics(args) -> list:
    """The metric objects of the options, with ``dataset_meta`` set."""
    from mmseg.evaluation.metrics import IoUMetric

    from mmgscnn.evaluation.metrics import BoundaryFScore, BoundaryIoUMetric, CropIoUMetric
    ignore = args.ignore_index
    metrics = [IoUMetric(iou_metrics=['mIoU'], ignore_index=ignore),
               BoundaryFScore(tolerances=tuple(args.tolerances), ignore_index=ignore),
               BoundaryIoUMetric(dilation_ratio=args.dilation_ratio, ignore_index=ignore)]
    if args.crop_factors is not None:
        metrics.append(CropIoUMetric(crop_factors=tuple(args.crop_factors),
                                     ignore_index=ignore))
    classes = tuple(args.classes or (str(c) for c in range(args.num_classes)))
    for m in metrics:
        m.dataset_meta = dict(classes=classes)
    return metrics


def score_pair(task: tuple) -> tuple:
    """One (name, pred path, gt path, args): ``(name, problem or None,
    [per-metric results of this image], [per-metric out-of-range records])``.
    Top level: runs in worker processes."""
    import torch
    name, pred_path, gt_path, args = task
    try:
        pred, gt = read_label(pred_path), read_label(gt_path)
    except (OSError, ValueError) as err:  # unreadable, or not a label map
        return name, str(err), None, None
    if pred.shape != gt.shape:
        return name, (f'prediction {pred_path} is {pred.shape[0]}x{pred.shape[1]}, '
                      f'ground truth {gt.shape[0]}x{gt.shape[1]}'), None, None
    if args.reduce_zero_label:
        gt = np.where(gt == 0, args.ignore_index, gt - 1)
        gt[gt == args.ignore_index - 1] = args.ignore_index
    sample = dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                  gt_sem_seg=dict(data=torch.from_numpy(gt)[None]), seg_map_path=gt_path)
    metrics = build_metrics(args)
    for m in metrics:
        m.process({}, [sample])
    # the metrics' own per-image records, merged into the main process's metrics
    return (name, None, [m.results for m in metrics],
            [m.__dict__.get('_out_of_range', []) for m in metrics])


def run_pairs(tasks: List[tuple], workers: int) -> list:
    from mmengine.utils import track_parallel_progress, track_progress
    if not tasks:
        return []
    if workers > 1:
        return track_parallel_progress(score_pair, tasks, workers, file=sys.stdout)
    return track_progress(score_pair, tasks, file=sys.stdout)


def per_class_tables(metrics: list, args) -> Dict[str, Dict[str, float]]:
    """{column: {class: percent}}: IoU, BF@<t>px and BIoU per class, from
    the metrics' accumulated results (before ``evaluate`` clears them)."""
    import torch
    iou_metric, bf, biou = metrics[:3]
    classes = iou_metric.dataset_meta['classes']
    tables = {}
    if iou_metric.results:
        inter, union = (torch.stack([r[i] for r in iou_metric.results]).double().sum(0).numpy()
                        for i in (0, 1))
        with np.errstate(divide='ignore', invalid='ignore'):
            tables['IoU'] = inter / union
        for t, row in zip(bf.tolerances, bf.class_scores(bf.results)):
            tables[f'BF@{t:g}px'] = row
        tables['BIoU'] = biou.class_scores(biou.results)
    return {col: {c: float(np.round(v * 100, 2)) for c, v in zip(classes, values)}
            for col, values in tables.items()}


def markdown(results: Dict[str, float], tables: Dict[str, Dict[str, float]],
             problems: List[str]) -> str:
    lines = ['| metric | value (%) |', '| --- | ---: |']
    lines += [f'| {k} | {v:.2f} |' for k, v in results.items()]
    if tables:
        cols = list(tables)
        lines += ['', '| class | ' + ' | '.join(cols) + ' |',
                  '| --- | ' + ' | '.join('---:' for _ in cols) + ' |']
        for c in next(iter(tables.values())):
            lines.append(f'| {c} | ' + ' | '.join(f'{tables[col][c]:.2f}' for col in cols)
                         + ' |')
    if problems:
        lines += ['', f'Not scored ({len(problems)}):', ''] + [f'- {p}' for p in problems]
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.logging import MMLogger
    if MMLogger.check_instance_created('eval_boundary'):  # main() called again
        MMLogger.get_instance('eval_boundary')
    else:
        MMLogger.get_instance('eval_boundary', log_level='INFO')

    gts, preds = label_files(args.gt, GT_SUFFIX), label_files(args.pred, PRED_SUFFIX)
    if not gts:
        raise SystemExit(f'eval_boundary.py: no *{GT_SUFFIX} file under --gt {args.gt}')
    problems = [f'{gts[n]}: no prediction {osp.join(args.pred, n + PRED_SUFFIX)}'
                for n in sorted(gts) if n not in preds]
    tasks = [(n, preds[n], gts[n], args) for n in sorted(gts) if n in preds]
    print(f'{len(tasks)} prediction/ground-truth pair(s), {len(gts)} ground-truth '
          f'file(s), {len(set(preds) - set(gts))} prediction(s) without ground truth '
          '(left out)', flush=True)

    metrics = build_metrics(args)
    scored = 0
    for name, problem, results, out_of_range in run_pairs(tasks, args.workers):
        if problem:
            problems.append(f'{gts[name]}: {problem}')
            continue
        scored += 1
        for m, res, oor in zip(metrics, results, out_of_range):
            m.results.extend(res)
            if oor:
                m.__dict__.setdefault('_out_of_range', []).extend(oor)

    results, tables = {}, {}
    if scored:
        tables = per_class_tables(metrics, args)
        from mmgscnn.cli.runner_tool import user_errors
        with user_errors('eval_boundary.py'):
            for m in metrics:
                results.update({k: float(v) for k, v in m.evaluate(scored).items()})
    print('\n'.join(f'{k}: {v:.2f}' for k, v in results.items()), flush=True)
    report = dict(pred=args.pred, gt=args.gt, num_classes=args.num_classes,
                  images=scored, results=results, per_class=tables, not_scored=problems)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(markdown(results, tables, problems))
    if problems:
        print('\n'.join(problems), file=sys.stderr)
        print(f'eval_boundary.py: {len(problems)} ground-truth file(s) not scored (above); '
              'give each a prediction of the same size', file=sys.stderr)
        raise SystemExit(1)
    return 0
