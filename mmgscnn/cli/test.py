"""Evaluation of a checkpoint (``tools/test.py``), like mmseg's tools/test.py.

The metrics are the config's ``test_evaluator`` (the mmgscnn configs report
mIoU, boundary F-scores and the crop-factor mIoU table in one run);
``--show-dir`` draws pictures with the config's visualizer, ``--out`` writes
the predicted label maps, ``--tta`` runs the config's ``tta_model`` on its
``tta_pipeline`` and ``--metrics-out`` writes the metrics as JSON. Batch norms
are folded into the convolutions before testing (:mod:`mmgscnn.deploy.fuse_bn`).
"""
import argparse
import json
import os
import os.path as osp

from ..deploy.fuse_bn import FuseBNHook
from ..utils.config import load_config, shutdown_distributed
from .runner_tool import checked_runner, parse_runner_args, user_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a segmentor (mmseg + mmgscnn)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='folder to save the predicted label maps (PNG)')
    parser.add_argument('--show', action='store_true', help='show results in a window')
    parser.add_argument('--show-dir', help='folder (inside the work dir) for pictures of '
                        'image, ground truth, prediction and boundary map')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument('--show-interval', type=int, default=1,
                        help='with --show/--show-dir: draw every N-th image (default: all)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--metrics-out', help='also write the metrics to this JSON file')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise SystemExit('--show/--show-dir need default_hooks.visualization '
                             "(dict(type='SegVisualizationHook')) in the config")
        hooks.visualization.draw = True
        hooks.visualization.show = args.show
        hooks.visualization.wait_time = args.wait_time
        hooks.visualization.interval = args.show_interval
        if args.show_dir:
            cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir) \
                if not osp.isabs(args.show_dir) else args.show_dir
    if args.out:
        cfg.test_evaluator = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        for evaluator in cfg.test_evaluator:
            if evaluator.type == 'IoUMetric':
                evaluator.output_dir = args.out
                evaluator.keep_results = True
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise SystemExit('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        if cfg.model.get('type') == 'GSCNNEncoderDecoder' and \
                cfg.tta_model.get('type') == 'SegTTAModel':
            # mmseg's TTA model keeps the boundary map of the last augmentation only
            print('[test] --tta: GSCNNTTAModel instead of SegTTAModel, so the boundary '
                  'map is averaged over the augmentations too', flush=True)
            cfg.tta_model.type = 'GSCNNTTAModel'
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    with user_errors('test.py'):
        runner = checked_runner(cfg, 'test')
        runner.register_hook(FuseBNHook(), priority='LOWEST')  # after loading
        metrics = runner.test()
    shutdown_distributed()
    if args.metrics_out:
        os.makedirs(osp.dirname(osp.abspath(args.metrics_out)), exist_ok=True)
        with open(args.metrics_out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=1)
    return metrics
