"""The result of a run as Markdown: header, methods, and per group and
precision a table of figures and a table of ratios to the baseline."""
import math

from .precision import precision_label
from .results import RATIOS, TRAFFIC_FIGURES, figures


def _fmt(value, scale, digits=3):
    """``value / scale`` with at least ``digits`` significant digits; '-'
    for a figure that was not measured (None)."""
    if value is None:
        return '-'
    x = value / scale
    decimals = 0 if x == 0 else max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f'{x:.{decimals}f}'


def _ratio_cell(pair, key):
    if pair[key] is None:
        return '-'
    text = f'{pair[key]:.3f}'
    spread = pair.get(key + '_spread')
    if spread is not None:
        text += f' ({spread[0]:.3f}-{spread[1]:.3f})'
    if key in pair['targets_met']:  # no verdicts on CPU timings
        met = 'met' if pair['targets_met'][key] else '**missed**'
        text += f' (<= {pair["targets"][key]:.2f}: {met})'
    return text


def load_warning(env):
    """A warning when CPU timings ran while the host's load average exceeded
    its core count (other jobs then share the cores); None otherwise."""
    cores = env.get('cpu_count')
    if env['device_type'] != 'cpu' or not cores:
        return None
    loads = [v for v in (env.get('load_average_start'), env.get('load_average_end'))
             if v is not None]
    if not loads or max(loads) <= cores:
        return None
    return (f'warning: host load average {max(loads)} exceeded its {cores} cores: '
            'other jobs shared the CPU, timings are slower and noisier than alone')


def _header(result):
    env = result['environment']
    lines = [
        '# Shape stream benchmark', '',
        f'- date: {result["date"]}',
        f'- command: `{result["command"]}`',
        f'- device: {env["device"]}',
        f'- torch {env["torch"]}, mmseg {env["mmseg"]}, mmcv {env["mmcv"]}, '
        f'mmengine {env["mmengine"]}, Python {env["python"]}',
        f'- training: batch {env["batch"]}, crop {env["crop"][0]}x{env["crop"][1]}; '
        f'inference: batch 1, {env["infer_size"][0]}x{env["infer_size"][1]}' +
        ('' if not result['precisions'] else
         f'; warm-up {env["warmup"]}, timed {env["iters"]} (median)'),
        f'- precisions: {", ".join(env["precisions"])}' if result['precisions'] else
        '- --traffic-only: no timing, memory or sync check (warm-up and timed steps unused)',
        f'- host load average (1 min) at start / end: {env["load_average_start"]} / '
        f'{env["load_average_end"]}',
    ]
    warning = load_warning(env)
    if warning:
        lines.append(f'- **{warning}**')
    if env['cfg_options']:
        lines.append(f'- --cfg-options: {env["cfg_options"]}')
    if result.get('skipped'):
        names = ', '.join(f'{c["group"]}/{c["label"]}' for c in result['skipped'])
        lines.append(f'- not measured (--time-limit {result["time_limit_s"]:g} s '
                     f'reached): {names}')
    lines += ['', 'Methods:', '']
    lines += [f'- {k}: {v}' for k, v in result['methods'].items()]
    return lines


def render_markdown(result):
    """The Markdown text of a result dict (as written with --out)."""
    env = result['environment']
    lines = _header(result)
    for group in dict.fromkeys(r['group'] for r in result['models']):
        recs = [r for r in result['models'] if r['group'] == group]
        for precision in result['precisions']:
            label = precision_label(precision, env['device_type'])
            lines += ['', f'## {group}, {label}', '',
                      '| model | config | params (M) | GFLOPs | train step (ms) | '
                      'train peak mem (MiB) | inference (ms) |',
                      '| --- | --- | ---: | ---: | ---: | ---: | ---: |']
            for r in recs:
                f = figures(r, precision)
                cfg = r['config'] + ''.join(f' {k}={v}' for k, v in r['options'].items())
                lines.append(
                    f'| {r["label"]} | `{cfg}` | {_fmt(f["params"], 1e6)} | '
                    f'{_fmt(f["flops"], 1e9)} | {_fmt(f["train_step_s"], 1e-3)} | '
                    f'{_fmt(f["train_peak_memory_bytes"], 2**20)} | '
                    f'{_fmt(f["infer_s"], 1e-3)} |')
            lines += ['', '| ratio | params | FLOPs | train time | train memory | '
                      'inference | sync check |',
                      '| --- | ---: | ---: | ---: | ---: | ---: | --- |']
            for p in result['pairs']:
                if p['group'] != group or p['precision'] != label:
                    continue
                cells = [_ratio_cell(p, key) for key in RATIOS]
                lines.append(f'| {p["other"]} / {p["baseline"]} | {" | ".join(cells)} | '
                             f'{p["sync_check"]} |')
    lines += _traffic_tables(result)
    if not result['precisions']:  # --traffic-only: nothing timed, no targets
        return '\n'.join(lines + [''])
    lines += ['', 'Targets, GSCNN / baseline: stride-1 shape stream: train '
              'time <= 1.15, train memory <= 1.25, inference <= 1.10; stride 2: <= 1.05, '
              '<= 1.10, <= 1.05; the dual-task loss alone: train time <= 1.05.', '']
    return '\n'.join(lines)


_TRAFFIC_HEAD = ('saved for backward (MiB) | of it full-res (MiB) | train full-res passes | '
                 'train full-res pass bytes (MiB) | train full-res dense convs | '
                 'train memory-bound bytes, all (MiB) | infer full-res passes | '
                 'infer full-res pass bytes (MiB) | infer full-res dense convs | '
                 'infer memory-bound bytes, all (MiB) | train full-res conv bytes (MiB) | '
                 'infer full-res conv bytes (MiB) | train kernels, all | '
                 'infer kernels, all')


def _traffic_tables(result):
    """Per group: the proxy's figures of every model, then their ratios."""
    recs = [r for r in result['models'] if 'traffic' in r]
    if not recs:
        return []
    lines = []
    for group in dict.fromkeys(r['group'] for r in recs):
        if not result['precisions']:  # --traffic-only: no timing table gave these
            lines += ['', f'## {group}, size', '', '| model | config | params (M) | GFLOPs |',
                      '| --- | --- | ---: | ---: |']
            for r in (r for r in recs if r['group'] == group):
                cfg = r['config'] + ''.join(f' {k}={v}' for k, v in r['options'].items())
                lines.append(f'| {r["label"]} | `{cfg}` | {_fmt(r["params"], 1e6)} | '
                             f'{_fmt(r["flops"], 1e9)} |')
        lines += ['', f'## {group}, full-resolution traffic (fp32, CUDA code paths)', '',
                  f'| model | {_TRAFFIC_HEAD} |', '| --- |' + ' ---: |' * len(TRAFFIC_FIGURES)]
        for r in (r for r in recs if r['group'] == group):
            cells = [_fmt(r['traffic'][step][key], 2**20) if 'bytes' in key
                     else str(r['traffic'][step][key]) for step, key in TRAFFIC_FIGURES]
            lines.append(f'| {r["label"]} | {" | ".join(cells)} |')
        for p in result['traffic_pairs']:
            if p['group'] == group:
                cells = [_fmt(p[f'{step}_{key}_ratio'], 1) for step, key in TRAFFIC_FIGURES]
                lines.append(f'| {p["other"]} / {p["baseline"]} | {" | ".join(cells)} |')
    return lines
