"""Train a segmentor from a config, like mmseg's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse

from mmengine.runner import Runner

from mmgscnn.datasets.data_check import DatasetNotFoundError, check_dataset_folders
from mmgscnn.utils.config import (add_common_args, export_local_rank, load_config,
                                  shutdown_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor (mmseg + mmgscnn)')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a CUDA device)')
    add_common_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA device (mmengine\'s AmpOptimWrapper is '
                             'CUDA-only); drop --amp to train in fp32 on the CPU')
        if cfg.optim_wrapper.type != 'AmpOptimWrapper':
            if cfg.optim_wrapper.type != 'OptimWrapper':
                raise SystemExit(f'--amp works with optim_wrapper.type=OptimWrapper, the '
                                 f'config has {cfg.optim_wrapper.type}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    try:
        check_dataset_folders(cfg, 'train')
    except DatasetNotFoundError as err:
        raise SystemExit(str(err)) from None
    runner = Runner.from_cfg(cfg)
    runner.train()
    shutdown_distributed()
    return runner


if __name__ == '__main__':
    main()
