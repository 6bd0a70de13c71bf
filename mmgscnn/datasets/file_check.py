"""Read every image/label pair of a config's datasets and name every bad
file (the engine of ``tools/check_data.py``).

Per pair, :func:`~mmgscnn.datasets.label_check.pair_problems` decodes both
files (PIL) and reports: unreadable, truncated or empty files; an image
without its label; a label in the wrong mode (RGB/RGBA, 16-bit); a label of
another size than its image; label values outside ``0..num_classes-1``
that are not ``ignore_index`` (after ``reduce_zero_label`` and the
dataset's ``label_map``). Pairs are checked in worker processes with
mmengine's progress bar.
"""
import os
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from .checked_pipelines import model_label_space
from .data_check import _leaf_datasets
from .label_check import pair_problems

SPLITS = ('train', 'val', 'test')


def split_datasets(cfg, splits: Sequence[str] = SPLITS) -> List[Tuple[str, str, dict]]:
    """(split, config key, dataset config) of each leaf dataset of the
    splits' dataloaders that the config has; a dataset that two splits
    share (``test_dataloader = val_dataloader``) is listed once."""
    found, seen = [], set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        for key, dataset in _leaf_datasets(loader['dataset'], f'{split}_dataloader.dataset'):
            ident = repr({k: dataset.get(k) for k in ('type', 'data_root', 'data_prefix',
                                                      'ann_file', 'img_suffix',
                                                      'seg_map_suffix', 'metainfo')})
            if ident not in seen:
                seen.add(ident)
                found.append((split, key, dataset))
    return found


def dataset_tasks(dataset_cfg: dict, num_classes: Optional[int], ignore_index: int
                  ) -> Tuple[List[tuple], List[tuple], int]:
    """(tasks for :func:`check_task`, problems found without reading files,
    number of classes used) of one dataset config."""
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS

    from .camvid_layout import CamVidLayoutDataset
    cfg = dict(dataset_cfg, pipeline=[], lazy_init=True)
    cfg.pop('serialize_data', None)
    dataset = DATASETS.build(cfg)
    if num_classes is None:
        num_classes = len(dataset.metainfo.get('classes') or ()) or None
    img_dir = dataset.data_prefix.get('img_path', '')
    if not dataset.ann_file and not osp.isdir(img_dir):
        return [], [(img_dir, 'missing', 'image folder does not exist')], num_classes
    # CamVid-layout datasets refuse to list images without labels; list them
    # all here so that each one is named.
    load = BaseSegDataset.load_data_list if isinstance(dataset, CamVidLayoutDataset) \
        else type(dataset).load_data_list
    infos = load(dataset)
    if not infos:
        return [], [(img_dir, 'missing', f'holds no *{dataset.img_suffix} image')], \
            num_classes
    tasks = [(info['img_path'], info.get('seg_map_path'), num_classes, ignore_index,
              bool(info.get('reduce_zero_label')), info.get('label_map'))
             for info in infos]
    return tasks, [], num_classes


def check_task(task: tuple) -> List[tuple]:
    """:func:`pair_problems` of one task (top level: runs in worker processes)."""
    return pair_problems(*task)


def run_tasks(tasks: List[tuple], workers: int, progress: bool = True) -> List[tuple]:
    """Problems of all tasks, in task order, ``workers`` processes (0: this one)."""
    if not tasks:
        return []
    if progress:
        from mmengine.utils import track_parallel_progress, track_progress
        results = (track_parallel_progress(check_task, tasks, workers, file=sys.stdout,
                                           chunksize=max(1, min(16, len(tasks) // (4 * workers))))
                   if workers > 1 else track_progress(check_task, tasks, file=sys.stdout))
    elif workers > 1:
        from multiprocessing import Pool
        with Pool(workers) as pool:
            results = pool.map(check_task, tasks, chunksize=8)
    else:
        results = [check_task(t) for t in tasks]
    return [p for problems in results for p in problems]


def check_files(cfg, splits: Sequence[str] = SPLITS, workers: int = 0,
                num_classes: Optional[int] = None, progress: bool = True) -> Dict:
    """Check every pair of the ``splits`` datasets of ``cfg``. Returns
    ``dict(datasets=[(split, key, pairs checked, num_classes)],
    problems=[(path, kind, what)], pairs=total)``."""
    model_classes, ignore_index = model_label_space(cfg.get('model'))
    num_classes = num_classes or model_classes
    report = dict(datasets=[], problems=[], pairs=0)
    for split, key, dataset_cfg in split_datasets(cfg, splits):
        tasks, problems, k = dataset_tasks(dataset_cfg, num_classes, ignore_index)
        if progress:
            print(f'{key}: {len(tasks)} image(s), {k or "?"} classes, ignore_index '
                  f'{ignore_index}', flush=True)
        problems += run_tasks(tasks, workers, progress)
        report['datasets'].append((split, key, len(tasks), k))
        report['problems'] += problems
        report['pairs'] += len(tasks)
    return report


def summary(report: Dict) -> List[str]:
    """Lines: every bad file with what is wrong, then the counts."""
    lines = [f'{path}: {what}' for path, _, what in report['problems']]
    kinds = Counter(kind for _, kind, _ in report['problems'])
    files = len({path for path, _, _ in report['problems']})
    n_sets = len(report['datasets'])
    if files:
        by_kind = ', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))
        lines.append(f'{files} bad file(s) in {report["pairs"]} image/label pair(s) of '
                     f'{n_sets} dataset(s): {by_kind}')
    else:
        lines.append(f'all {report["pairs"]} image/label pair(s) of {n_sets} dataset(s) '
                     'are readable, of equal size and in range')
    return lines


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


__all__ = ['SPLITS', 'split_datasets', 'dataset_tasks', 'check_task', 'run_tasks',
           'check_files', 'summary', 'default_workers']
