"""Cost of the shape stream against the baseline: parameters, FLOPs, training
step time and peak memory, inference latency, in fp32 and with AMP.

    python tools/benchmark.py [--groups deeplabv3plus pspnet]
        [--configs [LABEL=]BASELINE [LABEL=]OTHER ... [--configs ...]]
        [--variant LABEL KEY=VALUE ... [--variant ...]] [--stride2]
        [--device cuda] [--batch 2] [--crop 512 1024] [--infer-size 1024 2048]
        [--warmup 5] [--iters 20] [--rounds 3] [--precision fp32 amp] [--threads N]
        [--cfg-options k=v ...] [--skip-flops] [--time-limit SECONDS]
        [--profile DIR] [--traffic | --traffic-only] [--inductor-kernels]
        [--out FILE.json] [--markdown FILE.md]

A group is a baseline config and the configs compared with it; every model
of every group is measured in this one run, one after the other, and each
figure is divided by the baseline's. Built-in groups (``--groups``):
``deeplabv3plus`` and ``pspnet``, each mmseg's R101-D8 Cityscapes config
(``baseline``), the same model trained with our DualTaskLoss
(``dualtask``, configs/dual_task/) and the GSCNN model (``gscnn``,
configs/gscnn/). ``--variant LABEL KEY=VALUE ...`` adds, for every GSCNN
config, a copy with those overrides (``gscnn-LABEL``); ``--stride2`` is
``--variant s2 model.shape_head.shape_stream.stride=2``.

The work is done by :mod:`mmgscnn.benchmark`; see docs/benchmarks.md for
what every figure means and how it is measured.
"""
import argparse
import sys

from mmgscnn.benchmark.groups import GROUPS
from mmgscnn.benchmark.options import BenchmarkOptions

D = BenchmarkOptions  # the defaults


def parse_args(argv):
    """The command line -> :class:`BenchmarkOptions` (checked there)."""
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Shape stream vs baseline: params, FLOPs, training step time and '
        'peak memory, inference latency (fp32 and AMP).',
        argument_default=argparse.SUPPRESS)  # unset options take BenchmarkOptions' defaults
    p.add_argument('--groups', nargs='+', metavar='GROUP',
                   help=f'built-in groups to run: {", ".join(GROUPS)} (default: all, '
                   'unless --configs is given)')
    p.add_argument('--configs', nargs='+', action='append', metavar='[LABEL=]CONFIG',
                   help='one more group: the baseline config first, then the configs '
                   'compared with it; a config is a file or an mmseg:: path; repeat '
                   'the option for several groups')
    p.add_argument('--variant', nargs='+', action='append', metavar=('LABEL', 'KEY=VALUE'),
                   help='for every GSCNN config (one with a shape stream) also run a copy '
                   'labelled <label>-LABEL with these config overrides, e.g. --variant '
                   's2 model.shape_head.shape_stream.stride=2; repeatable')
    p.add_argument('--stride2', action='store_true',
                   help='shorthand for --variant s2 model.shape_head.shape_stream.stride=2')
    p.add_argument('--device',
                   help="'cuda', 'cuda:N' or 'cpu' (default: cuda when available)")
    p.add_argument('--batch', type=int, help=f'training batch size (default {D.batch})')
    p.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'),
                   help='training crop (default {} {})'.format(*D.crop))
    p.add_argument('--infer-size', type=int, nargs=2, metavar=('H', 'W'),
                   help='inference image size, batch 1 (default {} {}, full Cityscapes); '
                   'FLOPs are counted at it'.format(*D.infer_size))
    p.add_argument('--warmup', type=int,
                   help=f'untimed steps before timing (default {D.warmup})')
    p.add_argument('--iters', type=int,
                   help=f'timed steps, median reported (default {D.iters})')
    p.add_argument('--rounds', type=int,
                   help='timing rounds, interleaved: every column once per round '
                   '(baseline, GSCNN, baseline, GSCNN, ...); the ratio is of the medians '
                   f'of all timed steps, its spread over the rounds (default {D.rounds})')
    p.add_argument('--precision', nargs='+', choices=['fp32', 'amp'],
                   help='amp: fp16 autocast with AmpOptimWrapper on CUDA, bf16 autocast '
                   f'on the CPU (default {" ".join(D.precision)})')
    p.add_argument('--threads', type=int,
                   help='torch CPU threads (torch.set_num_threads) in this process and '
                   'the CPU training workers (default: torch\'s default)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='config overrides applied to every config, e.g. '
                   'model.backbone.depth=50')
    p.add_argument('--skip-flops', action='store_true',
                   help='do not count FLOPs (slow for a big model at full size); '
                   'parameters are still counted, FLOPs show as "-"')
    p.add_argument('--time-limit', type=float, metavar='SECONDS',
                   help='start no column that would end after SECONDS from the start '
                   '(judged by the longest column so far); the columns done are still '
                   'reported and written, the others listed as not measured')
    p.add_argument('--profile', metavar='DIR',
                   help='also write a torch.profiler table of one training step (CUDA) '
                        'and one inference step of every column and precision to DIR')
    p.add_argument('--traffic', action='store_true',
                   help='also count the full-resolution traffic of one training and one '
                   'inference step (device-independent proxy: bytes saved for backward, '
                   'memory-bound full-resolution passes and their bytes)')
    p.add_argument('--traffic-only', action='store_true',
                   help='count only that proxy (and parameters, FLOPs unless --skip-flops); '
                   'no timing, memory or sync check')
    p.add_argument('--inductor-kernels', action='store_true',
                   help='also count the kernels Inductor generates for the shape stream '
                   'and the shape losses (shape_head.compile\'s regions; compiles them)')
    p.add_argument('--out', help='write the results as JSON to this file')
    p.add_argument('--markdown', help='write the tables as Markdown to this file')
    return BenchmarkOptions(**vars(p.parse_args(argv)))


def main(argv=None):
    """Run the benchmark; returns the result dict (also written with --out)."""
    from mmgscnn.benchmark.run import run_benchmark
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_benchmark(parse_args(argv), argv)


if __name__ == '__main__':
    main()
