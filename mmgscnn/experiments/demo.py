"""The main job (``make demo``): baseline against GSCNN on SyntheticStreet.

Writes the data if it is missing, trains and tests both models with the
experiment runner (``tools/train.py`` and ``tools/test.py``, output on the
terminal), draws validation pictures with ``tools/infer.py`` and returns
their comparison: mIoU, boundary F at each tolerance, whole-image IoU of the
thin classes, training time per iteration, peak memory, parameters.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from mmgscnn.datasets.synthetic import META_FILE, THIN_CLASSES
from .environment import device_description, torch_version
from .runner import FINISHED, REPO, Run, run_tool, tool_command, train_and_test

#: (name, config) of the two models compared, relative to the repository.
DEMO_CONFIGS = (
    ('baseline',
     'configs/deeplabv3plus/deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py'),
    ('gscnn', 'configs/gscnn/gscnn-deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py'))
#: Metric key of a class's IoU on the whole image (the synthetic configs'
#: CropIoUMetric with prefix 'whole', crop factor 0 and no border).
WHOLE_IMAGE_IOU = 'whole/IoU.{}@crop0'
WHOLE_IMAGE_METRIC = ("dict(type='CropIoUMetric', crop_factors=(0,), vp_border=0, "
                      "class_keys=True, prefix='whole')")


def say(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


def ensure_data(data_dir: str, num_train: int, num_val: int) -> None:
    """Write SyntheticStreet to ``data_dir`` unless its ``meta.json`` is there."""
    if osp.isfile(osp.join(data_dir, META_FILE)):
        say(f'data: {data_dir} (already there)')
        return
    from mmgscnn.datasets.synthetic_street_generator import generate
    say(f'data: writing the SyntheticStreet dataset to {data_dir}')
    generate(data_dir, num_train, num_val)


def seconds_per_iter(work_dir: str) -> float:
    """Median of mmengine's logged per-iteration time in seconds (without the
    first log interval, which includes start-up)."""
    times = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if 'time' in entry and 'loss' in entry:
                    times.append(entry['time'])
    if not times:
        raise SystemExit(f'[demo] no iteration times logged under {work_dir}')
    return float(np.median(times[1:] if len(times) > 1 else times))


def count_params(config: str) -> int:
    """Parameters of the model of ``config``."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    return sum(p.numel() for p in model.parameters())


def schedule_options(iters: Optional[int], batch_size: Optional[int]) -> List[str]:
    """``--cfg-options`` items for another number of iterations (schedule,
    validation, checkpoint and log intervals follow) and batch size."""
    opts = []
    if iters:
        opts += [f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={iters}',
                 f'train_cfg.val_interval={iters}',
                 f'default_hooks.checkpoint.interval={iters}',
                 f'default_hooks.logger.interval={max(1, min(20, iters // 5))}']
    if batch_size:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    return opts


def train_test_draw(name: str, config: str, out_dir: str, data_dir: str,
                    train_options: List[str], pictures: int, device: str,
                    env: Dict[str, str]) -> dict:
    """Train and test one model in ``out_dir/name`` (from scratch), draw
    ``pictures`` validation images; returns its row of the results."""
    say(f'training and evaluating {name}: {config}')
    result = train_and_test(Run(config, osp.join(out_dir, name), train_options, env=env,
                                name=name), fresh=True)
    if result.status != FINISHED:
        raise SystemExit(f'[demo] {name}: {result.error}')
    picture_dir = osp.join(out_dir, 'pictures', name)
    images = sorted(glob.glob(osp.join(data_dir, 'val', '*.png')))[:pictures]
    if images:
        run_tool(tool_command('infer', config, result.checkpoint, *images, '--out-dir',
                              picture_dir, '--device', device), env=dict(os.environ, **env))
    return dict(config=config, checkpoint=result.checkpoint, metrics=result.metrics,
                peak_rss=result.train_peak_rss, sec_per_iter=seconds_per_iter(
                    osp.join(out_dir, name)), params=count_params(config),
                pictures=picture_dir)


def thin_class_ious(metrics: Dict[str, float], config: str) -> Dict[str, float]:
    """Whole-image IoU of every class in ``THIN_CLASSES``."""
    keys = {c: WHOLE_IMAGE_IOU.format(c) for c in THIN_CLASSES}
    missing = [k for k in keys.values() if k not in metrics]
    if missing:
        raise SystemExit(f'[demo] the test of {config} reported no {missing[0]}: its '
                         f'test_evaluator needs {WHOLE_IMAGE_METRIC}')
    return {c: metrics[k] for c, k in keys.items()}


def results_table(results: Dict[str, dict]) -> str:
    """Markdown table: baseline | GSCNN | difference (or ratio for costs)."""
    base, gscnn = results['baseline'], results['gscnn']
    mb, mg = base['metrics'], gscnn['metrics']
    rows = [('mIoU (%)', mb['mIoU'], mg['mIoU'])]
    rows += [(f'boundary F @{k.split("@")[1]} (%)', mb[k], mg[k])
             for k in mb if k.startswith('mBF@')]
    rows.append(('boundary IoU (%)', mb['mBIoU'], mg['mBIoU']))
    thin_b, thin_g = thin_class_ious(mb, base['config']), thin_class_ious(mg, gscnn['config'])
    rows += [(f'IoU {c} (%)', thin_b[c], thin_g[c]) for c in THIN_CLASSES]
    rows.append(('thin-class mean IoU (%)', np.mean(list(thin_b.values())),
                 np.mean(list(thin_g.values()))))
    lines = ['| | baseline | GSCNN | GSCNN - baseline |', '| --- | ---: | ---: | ---: |']
    lines += [f'| {label} | {b:.2f} | {g:.2f} | {g - b:+.2f} |' for label, b, g in rows]
    for label, key, show in (
            ('train time per iteration (s)', 'sec_per_iter', '{:.3f}'.format),
            ('peak memory, training process (MiB)', 'peak_rss', lambda v: f'{v / 2**20:.0f}'),
            ('parameters', 'params', '{:,}'.format)):
        b, g = base[key], gscnn[key]
        lines.append(f'| {label} | {show(b)} | {show(g)} | x{g / b:.2f} |')
    return '\n'.join(lines)


def run_demo(out_dir: str = 'demo_out', data_dir: str = 'data/synthetic',
             iters: Optional[int] = None, batch_size: Optional[int] = None,
             pictures: int = 4, num_train: int = 160, num_val: int = 40,
             device: str = 'cpu') -> Dict[str, dict]:
    """The whole demo; writes ``out_dir/results.md`` (header and table) and
    ``results.json`` and returns the results per model."""
    os.makedirs(out_dir, exist_ok=True)
    env = dict(SYNTHETIC_ROOT=osp.abspath(data_dir))
    ensure_data(data_dir, num_train, num_val)
    options = schedule_options(iters, batch_size)
    results = {name: train_test_draw(name, osp.join(REPO, config), out_dir, data_dir, options,
                                     pictures, device, env)
               for name, config in DEMO_CONFIGS}
    header = (f'mmgscnn demo: DeepLabV3+ R18-D8 (half width) on SyntheticStreet, '
              f'device {device_description()}, torch {torch_version()}, fp32, batch '
              f'{batch_size or 4}, crop 96x128, {iters or 600} iterations each; metrics on '
              f'the val split (120x160), per-class IoU on the whole image. Peak memory: '
              f'peak resident set size of the training process (Python and libraries '
              f'included).')
    text = header + '\n\n' + results_table(results) + '\n'
    print('\n' + text)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(text)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    say(f'table: {osp.join(out_dir, "results.md")}; pictures (image | prediction | boundary '
        f'map): {osp.join(out_dir, "pictures")}/{{baseline,gscnn}}/')
    return results


__all__ = ['run_demo', 'results_table', 'DEMO_CONFIGS', 'WHOLE_IMAGE_IOU']
