"""Tiny configs and hand-made records for the benchmark tests
(mmgscnn.benchmark, tools/benchmark.py)."""
import torch

from mmgscnn.benchmark.results import make_pairs

from helpers import tiny_model

CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)


def _write_config(path, model):
    path.write_text(f'model = {model.to_dict()!r}\n')
    return str(path)


def write_tiny_configs(root):
    """Baseline, baseline + DualTaskLoss, GSCNN (the tiny models of
    helpers.py) as config files under ``root`` -> {name: path}."""
    return dict(
        baseline=_write_config(root / 'base.py', tiny_model(gscnn=False)),
        dualtask=_write_config(root / 'dual.py', tiny_model(
            gscnn=False, loss_decode=[CE, dict(type='DualTaskLoss', loss_weight=1.0)])),
        gscnn=_write_config(root / 'gscnn.py', tiny_model(gscnn=True)))


ENV = dict(device='CPU: test', device_type='cpu', torch='2.x', mmseg='1', mmcv='2',
           mmengine='0', python='3', batch=2, crop=[32, 48], infer_size=[48, 64], warmup=0,
           iters=1, precisions=['fp32'], cudnn_benchmark=None, torch_threads=1,
           cfg_options={}, load_average_start=0.5, load_average_end=0.7)


def make_record(label, params, flops, step, memory, infer, stride=None, variant=None,
                options=None):
    """One model's record as mmgscnn.benchmark.run writes it (fp32 only)."""
    return dict(group='g', label=label, config=f'{label}.py', options=options or {},
                shape_stream_stride=stride, variant=variant, params=params, flops=flops,
                train={'fp32': dict(train_step_s=step, train_peak_memory_bytes=memory)},
                infer={'fp32': dict(infer_s=infer)}, sync_check={'fp32': 'not run'})


def make_records(flops=(1e9, 1.2e9, 1.1e9)):
    """Baseline, GSCNN and GSCNN at stride 2 (variant s2) of group 'g'."""
    return [make_record('base', 100, flops[0], 0.100, 2**20, 0.050),
            make_record('gscnn', 120, flops[1], 0.110, 1.5 * 2**20, 0.060, stride=1),
            make_record('gscnn-s2', 120, flops[2], 0.104, 1.05 * 2**20, 0.052, stride=2,
                        variant='s2', options={'model.shape_head.shape_stream.stride': 2})]


def make_result(records, device='cpu', **extra):
    """The result dict of a run of ``records`` on ``device`` (what the report
    renders)."""
    env = dict(ENV, device_type=device)
    pairs = make_pairs(records, env, ['fp32'], torch.device(device))
    return dict(date='today', command='python tools/benchmark.py', environment=env,
                precisions=['fp32'], methods=dict(params='counted'), pairs=pairs,
                models=records, **dict(dict(time_limit_s=None, skipped=[]), **extra))
