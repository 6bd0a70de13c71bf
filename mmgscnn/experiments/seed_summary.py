"""Metrics of several seeds per config: mean and range, as a Markdown table."""
import re
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

Summary = Dict[str, Dict[str, Tuple[float, float, float]]]


def summarise(per_seed: Mapping[str, Mapping[object, Mapping[str, float]]]) -> Summary:
    """``{name: {seed: {metric: value}}}`` -> ``{name: {metric: (mean, min,
    max)}}`` over the seeds that report the metric (NaN values left out).
    A name without any seed is left out."""
    table = {}
    for name, seeds in per_seed.items():
        if not seeds:
            continue
        keys = sorted(set().union(*(m.keys() for m in seeds.values())))
        table[name] = {}
        for key in keys:
            values = np.array([m[key] for m in seeds.values() if key in m], dtype=float)
            table[name][key] = (float(np.nanmean(values)), float(np.nanmin(values)),
                                float(np.nanmax(values)))
    return table


def metric_order(key: str) -> tuple:
    """Sort key: mIoU, boundary F, boundary IoU, crop mIoU, per-class IoU, the
    rest; numbers inside a key in numeric order (mBF@2px before mBF@10px)."""
    groups = (r'^mIoU$', r'^mBF@', r'^mBIoU$', r'^mIoU@crop', r'IoU\.')
    group = next((i for i, g in enumerate(groups) if re.search(g, key)), len(groups))
    parts = tuple(int(p) if p.isdigit() else p for p in re.split(r'(\d+)', key))
    return group, parts


def markdown_table(summary: Summary, names: Sequence[str]) -> List[str]:
    """Lines of a Markdown table: one row per metric, one column per name,
    cells ``mean (min..max)`` with two decimals; '' where a name lacks the
    metric (or has no finished run)."""
    keys = sorted(set().union(*(summary.get(n, {}).keys() for n in names)), key=metric_order)
    lines = ['| metric | ' + ' | '.join(names) + ' |',
             '| --- | ' + ' | '.join('---:' for _ in names) + ' |']
    for key in keys:
        cells = []
        for name in names:
            if key in summary.get(name, {}):
                mean, lo, hi = summary[name][key]
                cells.append(f'{mean:.2f} ({lo:.2f}..{hi:.2f})')
            else:
                cells.append('')
        lines.append(f'| {key} | ' + ' | '.join(cells) + ' |')
    return lines


__all__ = ['summarise', 'metric_order', 'markdown_table']
