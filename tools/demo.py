"""The main job (`make demo`): baseline against GSCNN on the built-in data.

    python tools/demo.py [--out-dir demo_out] [--iters 600] [--data-dir data/synthetic]

1. writes the SyntheticStreet dataset if it is missing (no download);
2. trains the baseline (configs/deeplabv3plus/deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py)
   and the same model with the shape stream (gscnn_...) with tools/train.py,
   showing mmengine's progress;
3. evaluates both with tools/test.py (mIoU, boundary F-score, crop mIoU,
   per-class IoU);
4. prints and saves a table: mIoU, boundary F at each tolerance, thin-class
   IoU, training time per iteration, peak memory, parameters;
5. writes pictures (image | prediction | boundary map) of validation images
   for both models with tools/infer.py.

Everything runs through the same configs and tools as real training.
"""
import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
MODELS = (('baseline', 'configs/deeplabv3plus/deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py'),
          ('gscnn', 'configs/gscnn/gscnn-deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py'))
THIN_CLASSES = ('pole', 'sign', 'fence', 'wire', 'pedestrian')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='baseline vs GSCNN on the built-in data')
    p.add_argument('--out-dir', default='demo_out', help='work dirs, table and pictures')
    p.add_argument('--data-dir', default='data/synthetic', help='dataset (written if missing)')
    p.add_argument('--iters', type=int, default=None,
                   help='training iterations per model (default: the configs\' 600)')
    p.add_argument('--batch-size', type=int, default=None, help='training batch size')
    p.add_argument('--pictures', type=int, default=4, help='validation images to draw')
    p.add_argument('--num-train', type=int, default=160, help='images if data is written')
    p.add_argument('--num-val', type=int, default=40, help='images if data is written')
    p.add_argument('--device', default='cpu', help='device of the inference pictures')
    return p.parse_args(argv)


def say(msg):
    print(f'[demo] {msg}', flush=True)


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(cmd, env):
    """Run ``cmd`` with its output on our terminal; return the peak resident
    memory of that process in bytes (Linux ru_maxrss is in KiB)."""
    say('$ ' + ' '.join(osp.relpath(c, REPO) if osp.isabs(c) else c for c in cmd))
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f'[demo] step failed (exit {proc.returncode}): {" ".join(cmd)}')
    return usage.ru_maxrss * 1024


def ensure_data(args):
    if osp.isfile(osp.join(args.data_dir, 'meta.json')):
        say(f'data: {args.data_dir} (already there)')
        return
    say(f'data: writing the SyntheticStreet dataset to {args.data_dir}')
    load_tool('generate_synthetic_data').generate(args.data_dir, args.num_train, args.num_val)


def seconds_per_iter(work_dir):
    """Median of mmengine's logged per-iteration time (without the first log
    interval, which includes start-up)."""
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


def count_params(config):
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    import mmgscnn  # noqa: F401
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    return sum(p.numel() for p in model.parameters())


def evaluator_index(config, metric):
    from mmengine.config import Config
    evaluators = Config.fromfile(config).test_evaluator
    for i, e in enumerate(evaluators if isinstance(evaluators, list) else [evaluators]):
        if e['type'] == metric:
            return i
    raise SystemExit(f'[demo] {config} has no {metric} in test_evaluator')


def train_and_test(name, config, args, env):
    work = osp.join(args.out_dir, name)
    if osp.isdir(work):
        shutil.rmtree(work)
    opts = []
    if args.iters:
        opts += [f'train_cfg.max_iters={args.iters}', f'param_scheduler.0.end={args.iters}',
                 f'train_cfg.val_interval={args.iters}',
                 f'default_hooks.checkpoint.interval={args.iters}',
                 f'default_hooks.logger.interval={max(1, min(20, args.iters // 5))}']
    if args.batch_size:
        opts.append(f'train_dataloader.batch_size={args.batch_size}')
    say(f'training {name}: {config}')
    peak = run([sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work]
               + (['--cfg-options', *opts] if opts else []), env)
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    say(f'evaluating {name}')
    metrics_file = osp.join(work, 'metrics.json')
    crop = evaluator_index(config, 'CropIoUMetric')
    run([sys.executable, osp.join(TOOLS, 'test.py'), config, ckpt, '--work-dir',
         osp.join(work, 'test'), '--metrics-out', metrics_file, '--cfg-options',
         f'test_evaluator.{crop}.class_keys=True'], env)
    with open(metrics_file) as f:
        metrics = json.load(f)
    pictures = osp.join(args.out_dir, 'pictures', name)
    images = sorted(glob.glob(osp.join(args.data_dir, 'val', '*.png')))[:args.pictures]
    if images:
        run([sys.executable, osp.join(TOOLS, 'infer.py'), config, ckpt, *images,
             '--out-dir', pictures, '--device', args.device], env)
    return dict(config=config, checkpoint=ckpt, metrics=metrics, peak_rss=peak,
                sec_per_iter=seconds_per_iter(work), params=count_params(config),
                pictures=pictures)


def table(results):
    base, gscnn = results['baseline'], results['gscnn']
    mb = base['metrics']
    rows = [('mIoU (%)', 'mIoU')]
    rows += [(f'boundary F @{k.split("@")[1]} (%)', k) for k in mb if k.startswith('mBF@')]
    rows += [(f'IoU {c} (%)', f'IoU.{c}@crop0') for c in THIN_CLASSES
             if f'IoU.{c}@crop0' in mb]
    lines = ['| | baseline | GSCNN | GSCNN - baseline |', '| --- | ---: | ---: | ---: |']
    for label, key in rows:
        b, g = mb[key], gscnn['metrics'][key]
        lines.append(f'| {label} | {b:.2f} | {g:.2f} | {g - b:+.2f} |')
    thin_b = np.mean([mb[f'IoU.{c}@crop0'] for c in THIN_CLASSES])
    thin_g = np.mean([gscnn['metrics'][f'IoU.{c}@crop0'] for c in THIN_CLASSES])
    lines.append(f'| thin-class mean IoU (%) | {thin_b:.2f} | {thin_g:.2f} | '
                 f'{thin_g - thin_b:+.2f} |')
    for label, key, fmt in (('train time per iteration (s)', 'sec_per_iter', '{:.3f}'),
                            ('peak memory, training process (MiB)', 'peak_rss', None),
                            ('parameters', 'params', '{:,}')):
        b, g = base[key], gscnn[key]
        if key == 'peak_rss':
            bs, gs = f'{b / 2**20:.0f}', f'{g / 2**20:.0f}'
        else:
            bs, gs = fmt.format(b), fmt.format(g)
        lines.append(f'| {label} | {bs} | {gs} | x{g / b:.2f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    env = dict(os.environ, SYNTHETIC_ROOT=osp.abspath(args.data_dir))
    ensure_data(args)
    results = {name: train_and_test(name, osp.join(REPO, config), args, env)
               for name, config in MODELS}
    import torch
    header = (f'mmgscnn demo: DeepLabV3+ R18-D8 (half width) on SyntheticStreet, '
              f'device cpu ({platform.processor() or platform.machine()}, '
              f'{os.cpu_count()} cores), torch {torch.__version__}, fp32, batch '
              f'{args.batch_size or 4}, crop 96x128, '
              f'{args.iters or 600} iterations each; metrics on the val split '
              f'(120x160). Peak memory: peak resident set size of the training '
              f'process (Python and libraries included).')
    text = header + '\n\n' + table(results) + '\n'
    print('\n' + text)
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(text)
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    say(f'table: {osp.join(args.out_dir, "results.md")}; pictures (image | prediction '
        f'| boundary map): {osp.join(args.out_dir, "pictures")}/{{baseline,gscnn}}/')
    return results


if __name__ == '__main__':
    main()
