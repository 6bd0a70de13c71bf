"""tools/benchmark.py on tiny configs on the CPU: tables, JSON, errors."""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch
from helpers import tiny_model

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIGURES = ('params', 'flops', 'train_step_s', 'train_peak_memory_bytes', 'infer_s')
RATIOS = dict(params_ratio='params', flops_ratio='flops', train_time_ratio='train_step_s',
              train_memory_ratio='train_peak_memory_bytes', infer_time_ratio='infer_s')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mmgscnn_benchmark_tool', osp.join(REPO, 'tools', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_tool()
CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    """One torch thread: on a CPU shared with other jobs, two threads can make
    a tiny step 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_config(path, model):
    path.write_text(f'model = {model.to_dict()!r}\n')
    return str(path)


@pytest.fixture(scope='module')
def tiny_configs(tmp_path_factory):
    """Baseline, baseline + DualTaskLoss, GSCNN: the tiny models of helpers.py."""
    root = tmp_path_factory.mktemp('bench_configs')
    return dict(
        baseline=_write_config(root / 'base.py', tiny_model(gscnn=False)),
        dualtask=_write_config(root / 'dual.py', tiny_model(
            gscnn=False, loss_decode=[CE, dict(type='DualTaskLoss', loss_weight=1.0)])),
        gscnn=_write_config(root / 'gscnn.py', tiny_model(gscnn=True)))


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def test_tiny_group_on_cpu_writes_complete_table_and_json(tiny_configs, tmp_path):
    out, md = tmp_path / 'res.json', tmp_path / 'res.md'
    argv = ['--device', 'cpu', '--configs', f'base={tiny_configs["baseline"]}',
            f'dual={tiny_configs["dualtask"]}', f'gscnn={tiny_configs["gscnn"]}',
            '--stride2', '--batch', '2', '--crop', '32', '48', '--infer-size', '48', '64',
            '--warmup', '0', '--iters', '1', '--precision', 'fp32', '--threads', '1',
            '--out', str(out), '--markdown', str(md)]
    result = bench.main(argv)
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    assert data['command'].endswith(' '.join(argv[-4:]))
    assert data['date'] and 'CPU' in data['environment']['device']
    # baseline vs dual, gscnn and the stride-2 copy of gscnn
    assert [p['other'] for p in data['pairs']] == ['dual', 'gscnn', 'gscnn-s2']
    for p in data['pairs']:
        assert p['device'] == data['environment']['device']
        assert p['torch'] == torch.__version__
        assert p['batch'] == 2 and p['crop'] == [32, 48] and p['precision'] == 'fp32'
        for key in FIGURES:
            assert _number(p['baseline_' + key]) and p['baseline_' + key] > 0, key
            assert _number(p['other_' + key]) and p['other_' + key] > 0, key
        for ratio, key in RATIOS.items():
            assert p[ratio] == pytest.approx(p['other_' + key] / p['baseline_' + key],
                                             rel=1e-12), ratio
    dual, gscnn, s2 = data['pairs']
    # the dual-task loss adds no parameters; the shape stream does
    assert dual['params_ratio'] == 1.0 and dual['flops_ratio'] == 1.0
    assert gscnn['params_ratio'] > 1.0 and gscnn['flops_ratio'] > 1.0
    assert s2['other_params'] == gscnn['other_params']
    assert s2['other_flops'] < gscnn['other_flops']
    assert (gscnn['shape_stream_stride'], s2['shape_stream_stride']) == (1, 2)
    assert gscnn['targets'] == dict(train_time_ratio=1.15, train_memory_ratio=1.25,
                                    infer_time_ratio=1.10)
    assert s2['targets']['train_time_ratio'] == 1.05 and dual['targets'] == {}
    assert gscnn['targets_met']['infer_time_ratio'] == (gscnn['infer_time_ratio'] <= 1.10)
    assert gscnn['sync_check'].startswith('not run') and dual['sync_check'].startswith('not run')
    assert data['methods']['train_memory'].startswith('each training measurement')
    text = md.read_text()
    assert '| gscnn / base |' in text and '| dual / base |' in text
    assert f'{gscnn["train_time_ratio"]:.3f} (<= 1.15: ' in text


def test_cpu_amp_is_labelled_bf16(tiny_configs, tmp_path):
    out = tmp_path / 'amp.json'
    bench.main(['--device', 'cpu', '--configs', tiny_configs['baseline'],
                tiny_configs['gscnn'], '--crop', '32', '32', '--infer-size', '32', '32',
                '--batch', '2', '--warmup', '0', '--iters', '1', '--precision', 'amp',
                '--threads', '1', '--out', str(out)])
    (pair, ) = json.loads(out.read_text())['pairs']
    assert pair['precision'] == 'amp-bf16' and pair['other'] == 'gscnn'
    assert all(_number(pair['other_' + k]) for k in FIGURES)


def test_own_code_runs_on_a_batch(tiny_configs):
    """The code the CUDA sync check wraps runs and gives our losses."""
    for name, expected in (('gscnn', {'loss_boundary', 'loss_attention', 'loss_dual_task'}),
                           ('dualtask', {'loss_dual_task'}), ('baseline', set())):
        cfg = bench.load_benchmark_config(tiny_configs[name], {}, None, (32, 48))
        model = bench.build_model(cfg, torch.device('cpu'))
        data = bench.train_batch(model, 2, (32, 48))
        entered = []

        def check():
            entered.append(1)
            return torch.no_grad()
        losses = bench.run_own_code(model, data, check)
        assert set(losses) == expected, name
        assert all(torch.isfinite(v) for v in losses.values())
        assert bool(entered) == bool(expected)
        assert bench.check_host_sync(model, data, 'fp32', torch.device('cpu')) == (
            'not run: CPU (needs CUDA)' if expected else
            'not applicable: no mmgscnn code in this model')


def test_config_preparation(tiny_configs):
    """No downloads, BN for SyncBN, batches padded to the crop, options last."""
    cfg = bench.load_benchmark_config(
        osp.join(REPO, 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        {'model.shape_head.shape_stream.stride': 2}, {'model.backbone.depth': 50},
        (64, 96))
    assert cfg.model.pretrained is None and cfg.model.backbone.depth == 50
    assert cfg.model.data_preprocessor.size == (64, 96)
    assert 'SyncBN' in repr(cfg.to_dict().get('norm_cfg'))  # mmseg's top-level variable
    assert 'SyncBN' not in repr(cfg.model.to_dict())
    assert cfg.model.decode_head.norm_cfg['type'] == 'BN'
    assert bench.shape_stream_stride(cfg) == 2
    assert bench.shape_stream_stride(bench.load_benchmark_config(
        tiny_configs['baseline'], {}, None, (32, 32))) is None
    path = bench.resolve_config(
        'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py', REPO)
    assert osp.isfile(path) and path.endswith('pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py')


def test_default_groups_resolve_to_existing_files():
    args = bench.parse_args([])
    groups = bench.select_groups(args)
    assert [g for g, _ in groups] == ['deeplabv3plus', 'pspnet']
    for _, cols in groups:
        assert [c['label'] for c in cols] == ['baseline', 'dualtask', 'gscnn']
        assert all(osp.isfile(c['path']) for c in cols)
    assert args.crop == [512, 1024] and args.infer_size == [1024, 2048]
    assert args.precision == ['fp32', 'amp']


@pytest.mark.parametrize('argv, message', [
    (['--groups', 'segformer'], "unknown group 'segformer'"),
    (['--configs', 'missing_base.py', 'missing_other.py'], "'missing_base.py' does not exist"),
    (['--configs', 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'], 'needs a baseline config'),
    (['--configs', 'mmseg::pspnet/nope.py', 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'],
     "'mmseg::pspnet/nope.py' does not exist"),
    (['--iters', '0'], '--iters must be >= 1'),
    (['--device', 'cuda:0'] if not torch.cuda.is_available() else ['--batch', '0'],
     'CUDA is not available' if not torch.cuda.is_available() else '--batch must be'),
])
def test_bad_options_name_the_option_and_the_fix(argv, message):
    with pytest.raises(SystemExit) as info:
        bench.main(argv)
    assert message in str(info.value)


def test_plain_cuda_device_gets_an_index(monkeypatch):
    """'cuda' (the default on a CUDA machine) becomes 'cuda:<current>', which
    torch.cuda.set_device accepts."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 3)
    assert bench.resolve_device('cuda') == torch.device('cuda', 3)
    assert bench.resolve_device('cuda:1') == torch.device('cuda', 1)
    assert bench.resolve_device('cpu') == torch.device('cpu')


def test_memory_counter_is_reset_after_the_warmup():
    calls = []
    times = bench._timed(lambda: calls.append('step'), warmup=2, iters=3,
                         device=torch.device('cpu'), after_warmup=lambda: calls.append('reset'))
    assert calls == ['step', 'step', 'reset', 'step', 'step', 'step']
    assert len(times) == 3
