"""Accuracy study: several configs x several seeds, same recipe, one table.

    python tools/accuracy_study.py --configs BASELINE DUALTASK GSCNN --seeds 0 1 \
        --work-dir work_dirs/study [--data-root DIR] [--cfg-options k=v ...] \
        [--out study.json] [--markdown study.md]

Every run trains with ``tools/train.py`` (``randomness.seed`` set per seed)
and is then evaluated with ``tools/test.py`` on the config's test split, each
in its own process; finished runs (their metrics file exists) are reused, so
an interrupted study continues where it stopped. The table gives, per config,
the mean and the spread (min..max) over seeds of every metric the config's
evaluator reports (mIoU, per-class IoU when ``CropIoUMetric.class_keys`` is
on, ``mBF@..``, ``mIoU@crop..``), plus the per-seed values in the JSON.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import subprocess
import sys

import numpy as np

TOOLS = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', required=True, help='config files')
    parser.add_argument('--names', nargs='+', help='column names (default: file names)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--work-dir', required=True, help='one folder per config and seed')
    parser.add_argument('--data-root', help='sets CAMVID_ROOT / SYNTHETIC_ROOT for the runs')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='k=v overrides for every run (train and test)')
    parser.add_argument('--train-only-options', nargs='+', default=[],
                        help='k=v overrides for training only')
    parser.add_argument('--out', help='JSON file for all results')
    parser.add_argument('--markdown', help='Markdown file for the table')
    args = parser.parse_args(argv)
    for path in args.configs:
        if not osp.isfile(path):
            parser.error(f'config {path!r} does not exist')
    if args.names and len(args.names) != len(args.configs):
        parser.error(f'--names gives {len(args.names)} names for {len(args.configs)} configs')
    return args


def run(cmd, env, log_path):
    """Run ``cmd``, its output appended to ``log_path``; raise with the log's
    tail when it fails."""
    with open(log_path, 'a') as log:
        log.write(f'$ {" ".join(cmd)}\n')
        log.flush()
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code:
        tail = open(log_path).read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {code}); log {log_path}:\n{tail}')


def latest_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_one(config, seed, work_dir, args, env):
    """Train and test one config with one seed; returns its metrics dict."""
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        print(f'[study] reuse {metrics_file}', flush=True)
        with open(metrics_file) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, 'study.log')
    common = list(args.cfg_options)
    train_opts = [f'randomness.seed={seed}'] + common + list(args.train_only_options)
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    print(f'[study] train {config} seed {seed} -> {work_dir}', flush=True)
    run([sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir,
         *resume, '--cfg-options', *train_opts], env, log)
    print(f'[study] test  {config} seed {seed}', flush=True)
    test_opts = ['--cfg-options', *common] if common else []
    run([sys.executable, osp.join(TOOLS, 'test.py'), config, latest_checkpoint(work_dir),
         '--work-dir', osp.join(work_dir, 'test'), '--metrics-out', metrics_file,
         *test_opts], env, log)
    with open(metrics_file) as f:
        return json.load(f)


def summarise(results):
    """{name: {seed: metrics}} -> {name: {metric: (mean, min, max)}}."""
    table = {}
    for name, per_seed in results.items():
        keys = sorted(set().union(*(m.keys() for m in per_seed.values())))
        table[name] = {}
        for k in keys:
            values = np.array([m[k] for m in per_seed.values() if k in m], dtype=float)
            table[name][k] = (float(np.nanmean(values)), float(np.nanmin(values)),
                              float(np.nanmax(values)))
    return table


def markdown(table, seeds, header_lines):
    names = list(table)
    keys = sorted(set().union(*(t.keys() for t in table.values())),
                  key=lambda k: (not k.startswith('mIoU'), not k.startswith('mBF'), k))
    lines = list(header_lines) + [
        '', f'Mean over seeds {seeds} (min..max), percent.', '',
        '| metric | ' + ' | '.join(names) + ' |',
        '| --- | ' + ' | '.join('---' for _ in names) + ' |'
    ]
    for k in keys:
        cells = []
        for n in names:
            if k in table[n]:
                mean, lo, hi = table[n][k]
                cells.append(f'{mean:.2f} ({lo:.2f}..{hi:.2f})')
            else:
                cells.append('')
        lines.append(f'| {k} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    env = dict(os.environ)
    if args.data_root:
        env['CAMVID_ROOT'] = env['SYNTHETIC_ROOT'] = osp.abspath(args.data_root)
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    results = {}
    for name, config in zip(names, args.configs):
        results[name] = {}
        for seed in args.seeds:
            results[name][seed] = run_one(config, seed,
                                          osp.join(args.work_dir, name, f'seed{seed}'),
                                          args, env)
    table = summarise(results)
    import torch
    # The runs are subprocesses of this one: they see the same devices.
    device = (f'CUDA ({torch.cuda.get_device_name(0)})' if torch.cuda.is_available()
              else f'CPU ({platform.processor() or platform.machine()})')
    header = [
        f'Accuracy study, {datetime.date.today().isoformat()}, device: {device}, '
        f'torch {torch.__version__}.',
        f'Command: `{" ".join([osp.relpath(sys.argv[0])] + (argv or sys.argv[1:]))}`',
        'Configs: ' + ', '.join(f'{n} = `{c}`' for n, c in zip(names, args.configs)),
    ]
    text = markdown(table, args.seeds, header)
    print(text)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(text)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(configs=dict(zip(names, args.configs)), seeds=args.seeds,
                           cfg_options=args.cfg_options,
                           train_only_options=args.train_only_options,
                           per_seed=results, summary=table, header=header), f, indent=1)
    return table


if __name__ == '__main__':
    main()
