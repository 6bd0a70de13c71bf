"""Check every image/label file of a config's datasets before training
(``tools/check_data.py``): names each unreadable, truncated or empty file,
image without label, label in the wrong mode (RGB, 16-bit), label of
another size than its image and label with values outside the classes.
Exits 1 when any file is bad, 0 on clean data. The checks are
:mod:`mmgscnn.datasets.file_check`."""
import argparse
import sys

from mmgscnn.datasets.file_check import SPLITS, check_files, default_workers, summary


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Check the images and labels of a config\'s '
                                'datasets (one line per bad file; exit 1 if any)')
    p.add_argument('config', help='config file')
    p.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS),
                   help='datasets to check (default: all the config has)')
    p.add_argument('--workers', type=int, default=default_workers(),
                   help='worker processes (default: min(8, CPUs); 0 or 1: none)')
    p.add_argument('--num-classes', type=int, default=None,
                   help="classes (default: the model's decode_head.num_classes, else "
                   "the dataset's class list)")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. '
                   'train_dataloader.dataset.data_root=DIR')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmgscnn.utils.config import load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
    except FileNotFoundError as err:
        raise SystemExit(f'check_data.py: {err}') from None
    from .runner_tool import user_errors
    with user_errors('check_data.py'):
        report = check_files(cfg, args.splits, args.workers, args.num_classes,
                             progress=not args.no_progress)
    if not report['datasets']:
        raise SystemExit(f'check_data.py: {args.config} has no dataset for the splits '
                         f'{", ".join(args.splits)}')
    lines = summary(report)
    print('\n'.join(lines), flush=True)
    if report['problems']:
        print('fix or remove these files (or the dataset\'s classes / label_map) and run '
              'check_data.py again', file=sys.stderr)
        raise SystemExit(1)
    return 0
