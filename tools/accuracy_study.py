"""Accuracy study: several configs x several seeds, same recipe, one table.

    python tools/accuracy_study.py --configs BASELINE GSCNN [--names a b] --seeds 0 1 \
        --work-dir work_dirs/study [--data-root DIR] [--amp] [--jobs N] \
        [--num-workers N] [--run-timeout SECONDS] [--time-limit SECONDS] \
        [--cfg-options k=v ...] [--train-only-options k=v ...] \
        [--out study.json] [--markdown study.md]
    python tools/accuracy_study.py --recipe configs/studies/camvid-gpu-180x240.py [options]

Every run trains with ``tools/train.py`` (``randomness.seed`` set per seed)
and is then tested with ``tools/test.py`` on the config's test split, each in
its own process, up to ``--jobs`` runs at a time; runs that finished earlier
(their ``metrics.json`` exists) are reused, so an interrupted study goes on
where it stopped. The table gives, per config, the mean and the range
(min..max) over seeds of every metric the config's evaluators report; the
JSON holds every run's metrics, status and commands, the device, torch
version, command and date. Both are rewritten after every run.

A recipe file (Python) sets any of the options (``configs``, ``names``,
``seeds``, ``work_dir``, ``data_root``, ``amp``, ``jobs``, ``num_workers``,
``run_timeout``, ``time_limit``, ``cfg_options``, ``train_only_options``,
``out``, ``markdown``); options on the command line win, and their
``--cfg-options`` and ``--train-only-options`` come after the recipe's.
"""
import argparse
import os.path as osp
import sys

from mmgscnn.experiments.accuracy_study import load_recipe, run_study, write_report

DEFAULTS = dict(seeds=[0, 1], amp=False, jobs=1, cfg_options=[], train_only_options=[])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--recipe', help='recipe file giving any of the options below')
    p.add_argument('--configs', nargs='+', help='config files')
    p.add_argument('--names', nargs='+', help='column names (default: file names)')
    p.add_argument('--seeds', nargs='+', type=int, help='random seeds (default: 0 1)')
    p.add_argument('--work-dir', help='one folder per config and seed')
    p.add_argument('--data-root', help='sets CAMVID_ROOT / SYNTHETIC_ROOT for the runs')
    p.add_argument('--amp', action='store_true', default=None,
                   help='train with automatic mixed precision (CUDA)')
    p.add_argument('--no-amp', dest='amp', action='store_false', default=None,
                   help='train in fp32 (overrides a recipe\'s amp)')
    p.add_argument('--jobs', type=int, help='runs at a time (default 1)')
    p.add_argument('--num-workers', type=int,
                   help='data-loader worker processes of each run (train and test)')
    p.add_argument('--run-timeout', type=float,
                   help='seconds per run, training and test together; a run still going '
                   'then is stopped and marked "timed out"')
    p.add_argument('--time-limit', type=float,
                   help='seconds for the whole study: runs still going then are stopped, '
                   'runs not started are skipped; the report keeps the finished ones')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='k=v overrides for every run (train and test)')
    p.add_argument('--train-only-options', nargs='+', default=[],
                   help='k=v overrides for training only')
    p.add_argument('--out', help='JSON file for all results')
    p.add_argument('--markdown', help='Markdown file for the table')
    args = p.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe) if args.recipe else {}
    except (OSError, ValueError) as err:
        p.error(str(err))
    for key, default in DEFAULTS.items():
        value = getattr(args, key)
        if key.endswith('options'):
            setattr(args, key, list(recipe.get(key, [])) + value)
        elif value is None:
            setattr(args, key, recipe.get(key, default))
    for key in ('configs', 'names', 'work_dir', 'data_root', 'num_workers', 'run_timeout',
                'time_limit', 'out', 'markdown'):
        if getattr(args, key) is None:
            setattr(args, key, recipe.get(key))
    if not args.configs or not args.work_dir:
        p.error('--configs and --work-dir are required (on the command line or in --recipe)')
    for path in args.configs:
        if not osp.isfile(path):
            p.error(f'config {path!r} does not exist')
    args.names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(args.names) != len(args.configs):
        p.error(f'--names gives {len(args.names)} names for {len(args.configs)} configs')
    if args.jobs < 1:
        p.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.num_workers is not None and args.num_workers < 0:
        p.error(f'--num-workers must be >= 0, got {args.num_workers}')
    for key in ('run_timeout', 'time_limit'):
        if getattr(args, key) is not None and getattr(args, key) <= 0:
            p.error(f'--{key.replace("_", "-")} must be > 0 seconds, got {getattr(args, key)}')
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    command = ' '.join(['tools/accuracy_study.py', *argv])
    try:
        report = run_study(args.names, args.configs, args.seeds, args.work_dir,
                           args.cfg_options, args.train_only_options, args.amp, args.jobs,
                           args.num_workers, args.run_timeout, args.time_limit,
                           args.data_root, args.out, args.markdown, command)
    except RuntimeError as err:
        raise SystemExit(f'[study] {err}')
    print(write_report(report, args.names, None, None))
    if args.markdown or args.out:
        print(f'[study] table: {args.markdown or "-"}; JSON: {args.out or "-"}')
    return report


if __name__ == '__main__':
    main()
