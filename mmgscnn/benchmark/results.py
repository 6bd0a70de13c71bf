"""Ratios of every column to its group's baseline, with the figures behind
them and the targets that apply."""
import math

from .precision import precision_label

# Targets for GSCNN / baseline, by shape-stream stride (docs/benchmarks.md).
TARGETS = {
    1: dict(train_time_ratio=1.15, train_memory_ratio=1.25, infer_time_ratio=1.10),
    2: dict(train_time_ratio=1.05, train_memory_ratio=1.10, infer_time_ratio=1.05),
}
# A column without a shape stream that runs our code: the baseline plus a loss
# (the dual-task loss as a loss_decode entry); only training changes.
LOSS_ONLY_TARGETS = dict(train_time_ratio=1.05)
RATIOS = ('params_ratio', 'flops_ratio', 'train_time_ratio', 'train_memory_ratio',
          'infer_time_ratio')
# absolute figures behind the ratios (units: count, FLOPs, s, bytes, s)
FIGURES = ('params', 'flops', 'train_step_s', 'train_peak_memory_bytes', 'infer_s')
RATIO_OF = dict(params_ratio='params', flops_ratio='flops',
                train_time_ratio='train_step_s',
                train_memory_ratio='train_peak_memory_bytes', infer_time_ratio='infer_s')
# figures that are None when FLOPs are not counted (--skip-flops)
FLOPS_KEYS = ('flops_ratio', 'baseline_flops', 'other_flops')


def figures(rec, precision):
    """The FIGURES of one model record at one precision."""
    return dict(params=rec['params'], flops=rec['flops'],
                train_step_s=rec['train'][precision]['train_step_s'],
                train_peak_memory_bytes=rec['train'][precision]['train_peak_memory_bytes'],
                infer_s=rec['infer'][precision]['infer_s'])


# ratios whose spread over the timing rounds is shown: (ratio, step, figure)
_SPREADS = (('train_time_ratio', 'train', 'train_step_s'),
            ('infer_time_ratio', 'infer', 'infer_s'))


def ratio_spread(base, other, key):
    """[lowest, highest] ratio of ``other``'s to ``base``'s ``key`` within one
    round (their ``<key>_rounds``, interleaved: round i of both ran back to
    back); None with fewer than two rounds."""
    b, o = base.get(key + '_rounds') or [], other.get(key + '_rounds') or []
    ratios = [x / y for x, y in zip(o, b) if x is not None and y]
    return [min(ratios), max(ratios)] if len(ratios) >= 2 else None


def make_pairs(records, env, precisions, device):
    """One record per (baseline, other column, precision) with the ratios,
    the figures behind them, the targets and the sync check. A ratio of a
    figure that was not measured (None) is None."""
    pairs = []
    for group in dict.fromkeys(r['group'] for r in records):
        cols = [r for r in records if r['group'] == group]
        base = cols[0]
        for other in cols[1:]:
            for precision in precisions:
                b, o = figures(base, precision), figures(other, precision)
                pair = dict(group=group, baseline=base['label'], other=other['label'],
                            baseline_config=base['config'], other_config=other['config'],
                            other_options=other['options'],
                            shape_stream_stride=other['shape_stream_stride'],
                            variant=other['variant'],
                            device=env['device'], torch=env['torch'], batch=env['batch'],
                            crop=env['crop'], infer_size=env['infer_size'],
                            precision=precision_label(precision, device.type))
                for ratio, key in RATIO_OF.items():
                    pair[ratio] = None if o[key] is None or b[key] is None \
                        else o[key] / b[key]
                for key in FIGURES:
                    pair['baseline_' + key] = b[key]
                    pair['other_' + key] = o[key]
                for ratio, step, key in _SPREADS:
                    pair[ratio + '_spread'] = ratio_spread(base[step][precision],
                                                           other[step][precision], key)
                stride = other['shape_stream_stride']
                if stride is None:
                    own_code = not str(other['sync_check'][precision]).startswith(
                        'not applicable')
                    targets = LOSS_ONLY_TARGETS if own_code else {}
                else:
                    targets = TARGETS.get(stride, {})
                pair['targets'] = dict(targets)
                # CPU timings say nothing of the GPU the targets are for: no verdicts
                pair['targets_met'] = {} if device.type != 'cuda' else {
                    k: pair[k] <= v for k, v in targets.items() if pair[k] is not None}
                pair['sync_check'] = other['sync_check'][precision]
                pairs.append(pair)
    return pairs


def check_complete(pairs, flops_counted=True):
    """Every pair figure is a finite number (FLOPs may be None when not
    counted), and every ratio the ratio of the figures behind it."""
    for p in pairs:
        for key in RATIOS + tuple('baseline_' + k for k in FIGURES) \
                + tuple('other_' + k for k in FIGURES):
            v = p[key]
            if v is None and not flops_counted and key in FLOPS_KEYS:
                continue
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RuntimeError(f'{p["group"]} {p["other"]} {p["precision"]}: {key}={v!r}')


# the proxy's figures (mmgscnn.benchmark.traffic): (step, key)
TRAFFIC_FIGURES = (('train', 'saved_bytes'), ('train', 'saved_bytes_full_res'),
                   ('train', 'passes_full_res'), ('train', 'pass_bytes_full_res'),
                   ('train', 'conv_ops_full_res'), ('train', 'pass_bytes'),
                   ('infer', 'passes_full_res'), ('infer', 'pass_bytes_full_res'),
                   ('infer', 'conv_ops_full_res'), ('infer', 'pass_bytes'),
                   ('train', 'conv_bytes_full_res'), ('infer', 'conv_bytes_full_res'),
                   ('train', 'kernels'), ('infer', 'kernels'))


def make_traffic_pairs(records, env):
    """One record per (baseline, other column) with the proxy's figures of
    both and their ratios (``<step>_<key>_ratio``; None where the
    baseline's figure is 0)."""
    pairs = []
    for group in dict.fromkeys(r['group'] for r in records):
        cols = [r for r in records if r['group'] == group]
        base = cols[0]
        for other in cols[1:]:
            pair = dict(group=group, baseline=base['label'], other=other['label'],
                        shape_stream_stride=other['shape_stream_stride'],
                        variant=other['variant'], device=env['device'],
                        torch=env['torch'], batch=env['batch'], crop=env['crop'],
                        infer_size=env['infer_size'], precision='fp32')
            for step, key in TRAFFIC_FIGURES:
                b, o = base['traffic'][step][key], other['traffic'][step][key]
                pair[f'baseline_{step}_{key}'] = b
                pair[f'other_{step}_{key}'] = o
                pair[f'{step}_{key}_ratio'] = o / b if b else None
            pairs.append(pair)
    return pairs
