"""tools/benchmark.py and mmgscnn.benchmark.run on tiny configs on the CPU:
tables, JSON, variants, --skip-flops, --time-limit."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from benchmark_helpers import write_tiny_configs

from mmgscnn.benchmark import run
from mmgscnn.benchmark.groups import REPO
from mmgscnn.benchmark.options import BenchmarkOptions
from mmgscnn.benchmark.results import FIGURES, RATIO_OF

TOOL = osp.join(REPO, 'tools', 'benchmark.py')
PAPER = ['model.shape_head.shape_stream.first_block_low_res=False',
         'model.shape_head.shape_stream.stem_channels=0']


@pytest.fixture(scope='module')
def tiny_configs(tmp_path_factory):
    return write_tiny_configs(tmp_path_factory.mktemp('bench_configs'))


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _tool(*argv):
    env = dict(__import__('os').environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, TOOL, *argv], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)


def test_tool_on_a_tiny_group_writes_complete_table_and_json(tiny_configs, tmp_path):
    out, md = tmp_path / 'res.json', tmp_path / 'res.md'
    argv = ['--device', 'cpu', '--configs', f'base={tiny_configs["baseline"]}',
            f'dual={tiny_configs["dualtask"]}', f'gscnn={tiny_configs["gscnn"]}',
            '--variant', 'paper', *PAPER, '--stride2', '--batch', '2', '--crop', '32', '48',
            '--infer-size', '48', '64', '--warmup', '0', '--iters', '1',
            '--precision', 'fp32', '--threads', '1', '--out', str(out), '--markdown', str(md)]
    proc = _tool(*argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data['command'] == 'python tools/benchmark.py ' + ' '.join(argv)
    assert data['date'] and 'CPU' in data['environment']['device']
    assert data['skipped'] == [] and data['time_limit_s'] is None
    # baseline vs dual, gscnn and its two variants (--variant first, then --stride2)
    assert [p['other'] for p in data['pairs']] == ['dual', 'gscnn', 'gscnn-paper',
                                                  'gscnn-s2']
    assert [m['variant'] for m in data['models']] == [None, None, None, 'paper', 's2']
    for p in data['pairs']:
        assert p['device'] == data['environment']['device']
        assert p['torch'] == torch.__version__
        assert p['batch'] == 2 and p['crop'] == [32, 48] and p['precision'] == 'fp32'
        for key in FIGURES:
            assert _number(p['baseline_' + key]) and p['baseline_' + key] > 0, key
            assert _number(p['other_' + key]) and p['other_' + key] > 0, key
        for ratio, key in RATIO_OF.items():
            assert p[ratio] == pytest.approx(p['other_' + key] / p['baseline_' + key],
                                             rel=1e-12), ratio
    dual, gscnn, paper, s2 = data['pairs']
    # the dual-task loss adds no parameters; the shape stream does
    assert dual['params_ratio'] == 1.0 and dual['flops_ratio'] == 1.0
    assert gscnn['params_ratio'] > 1.0 and gscnn['flops_ratio'] > 1.0
    assert s2['other_params'] == gscnn['other_params']
    assert s2['other_flops'] < gscnn['other_flops']
    # the paper's layout: no stem (fewer weights), first block at full resolution
    assert paper['other_params'] < gscnn['other_params']
    assert paper['other_flops'] > gscnn['other_flops']
    assert paper['other_options'] == {
        'model.shape_head.shape_stream.first_block_low_res': False,
        'model.shape_head.shape_stream.stem_channels': 0}
    assert [(p['shape_stream_stride'], p['variant']) for p in data['pairs']] == [
        (None, None), (1, None), (1, 'paper'), (2, 's2')]
    assert gscnn['targets'] == dict(train_time_ratio=1.15, train_memory_ratio=1.25,
                                    infer_time_ratio=1.10)
    assert paper['targets'] == gscnn['targets'] and dual['targets'] == dict(train_time_ratio=1.05)
    assert s2['targets']['train_time_ratio'] == 1.05
    assert gscnn['targets_met'] == {}  # CPU timings: no verdicts
    assert gscnn['sync_check'].startswith('not run') and dual['sync_check'].startswith('not run')
    assert data['methods']['train_memory'].startswith('each training measurement')
    text = md.read_text()
    assert text in proc.stdout
    assert '| gscnn / base |' in text and '| dual / base |' in text
    assert '| gscnn-paper / base |' in text and '| gscnn-s2 / base |' in text
    assert f'{gscnn["train_time_ratio"]:.3f}' in text and '(<= 1.15: ' not in text


def test_tool_passes_every_option_on(tiny_configs):
    """Every option reaches BenchmarkOptions (the checks there run after it)."""
    proc = _tool('--groups', 'nope', '--configs', tiny_configs['baseline'],
                 tiny_configs['gscnn'], '--variant', 'a', 'x=1', '--stride2', '--device',
                 'cpu', '--batch', '1', '--crop', '8', '8', '--infer-size', '8', '8',
                 '--warmup', '0', '--iters', '1', '--precision', 'fp32', '--threads', '1',
                 '--cfg-options', 'a=1', '--skip-flops', '--time-limit', '60',
                 '--out', 'x.json', '--markdown', 'x.md')
    assert proc.returncode != 0
    assert "benchmark.py: --groups: unknown group 'nope'" in proc.stderr, proc.stderr


def test_time_limit_keeps_the_columns_done(tiny_configs, tmp_path, monkeypatch):
    """Every column 'takes' 100 s on the limit's clock (a fake clock, so a
    slow or loaded machine changes nothing): with 250 s, base and gscnn are
    measured, gscnn-s2 (which would end at 300 s) is not. Also AMP on the
    CPU (bf16) and --skip-flops."""
    offset = [0.0]
    measure = run.measure_column

    def slow_measure(*args, **kwargs):
        rec = measure(*args, **kwargs)
        offset[0] += 100
        return rec

    monkeypatch.setattr(run, '_clock', lambda: offset[0])
    monkeypatch.setattr(run, 'measure_column', slow_measure)
    out, md = tmp_path / 'amp.json', tmp_path / 'amp.md'
    options = BenchmarkOptions(
        device='cpu', configs=[[tiny_configs['baseline'], tiny_configs['gscnn']]],
        stride2=True, crop=(32, 32), infer_size=(32, 32), batch=2, warmup=0, iters=1,
        precision=['amp'], threads=1, skip_flops=True, time_limit=250, out=str(out),
        markdown=str(md))
    result = run.run_benchmark(options, ['--time-limit', '250'])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    assert [m['label'] for m in data['models']] == ['baseline', 'gscnn']
    assert data['time_limit_s'] == 250
    assert data['skipped'] == [dict(group='base', label='gscnn-s2',
                                    config=tiny_configs['gscnn'],
                                    options={'model.shape_head.shape_stream.stride': 2},
                                    variant='s2')]
    (pair, ) = data['pairs']
    assert pair['precision'] == 'amp-bf16' and pair['other'] == 'gscnn'
    assert pair['flops_ratio'] is None and pair['other_flops'] is None
    assert _number(pair['params_ratio']) and pair['params_ratio'] > 1
    assert all(_number(pair['other_' + k]) for k in FIGURES if k != 'flops')
    assert data['methods']['flops'] == 'not counted (--skip-flops)'
    text = md.read_text()
    assert '- not measured (--time-limit 250 s reached): base/gscnn-s2' in text
    assert f'| gscnn / baseline | {pair["params_ratio"]:.3f} | - |' in text


def test_profile_writes_one_table_per_step_with_mmgscnn_ranges(tiny_configs, tmp_path):
    """--profile DIR: an operator table of the inference step (and, on CUDA,
    of the training step) of every column; GSCNN's named ranges are in it."""
    options = BenchmarkOptions(
        device='cpu', configs=[[tiny_configs['baseline'], tiny_configs['gscnn']]],
        crop=(32, 32), infer_size=(32, 32), batch=2, warmup=0, iters=1,
        precision=['fp32'], threads=1, skip_flops=True, profile=str(tmp_path / 'prof'))
    result = run.run_benchmark(options, ['--profile', str(tmp_path / 'prof')])
    gscnn = result['models'][1]
    path = gscnn['profiles']['fp32-infer']
    assert osp.dirname(path) == str(tmp_path / 'prof') and 'gscnn' in osp.basename(path)
    text = open(path).read()
    assert 'mmgscnn.shape_stream' in text and 'mmgscnn.decoder' in text
    assert 'aten::conv' in text or 'aten::convolution' in text
    baseline_text = open(result['models'][0]['profiles']['fp32-infer']).read()
    assert 'mmgscnn.shape_stream' not in baseline_text
