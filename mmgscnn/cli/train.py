"""Training from a config (``tools/train.py``), like mmseg's tools/train.py:
the config's overrides, ``--amp`` (AmpOptimWrapper, CUDA only), ``--resume``,
the dataset-folder check before the Runner is built, then ``Runner.train``."""
import argparse

from ..utils.config import load_config, shutdown_distributed
from .runner_tool import checked_runner, parse_runner_args, user_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor (mmseg + mmgscnn)')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a CUDA device)')
    return parse_runner_args(parser, argv)


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
    with user_errors('train.py'):
        runner = checked_runner(cfg, 'train')
        runner.train()
    shutdown_distributed()
    return runner
