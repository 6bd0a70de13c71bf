"""mmgscnn.benchmark.results and .report on hand-made records: ratios,
targets, FLOPs left out (--skip-flops), columns not measured."""
import pytest
import torch

from mmgscnn.benchmark.report import render_markdown
from mmgscnn.benchmark.results import check_complete, make_pairs

ENV = dict(device='CPU: test', device_type='cpu', torch='2.x', mmseg='1', mmcv='2',
           mmengine='0', python='3', batch=2, crop=[32, 48], infer_size=[48, 64], warmup=0,
           iters=1, precisions=['fp32'], cudnn_benchmark=None, torch_threads=1,
           cfg_options={}, load_average_start=0.5, load_average_end=0.7)


def _record(label, params, flops, step, memory, infer, stride=None, variant=None,
            options=None):
    return dict(group='g', label=label, config=f'{label}.py', options=options or {},
                shape_stream_stride=stride, variant=variant, params=params, flops=flops,
                train={'fp32': dict(train_step_s=step, train_peak_memory_bytes=memory)},
                infer={'fp32': dict(infer_s=infer)}, sync_check={'fp32': 'not run'})


def _records(flops=(1e9, 1.2e9, 1.1e9)):
    return [_record('base', 100, flops[0], 0.100, 2**20, 0.050),
            _record('gscnn', 120, flops[1], 0.110, 1.5 * 2**20, 0.060, stride=1),
            _record('gscnn-s2', 120, flops[2], 0.104, 1.05 * 2**20, 0.052, stride=2,
                    variant='s2', options={'model.shape_head.shape_stream.stride': 2})]


def _result(records, **extra):
    pairs = make_pairs(records, ENV, ['fp32'], torch.device('cpu'))
    return dict(date='today', command='python tools/benchmark.py', environment=ENV,
                precisions=['fp32'], methods=dict(params='counted'), pairs=pairs,
                models=records, **dict(dict(time_limit_s=None, skipped=[]), **extra))


def test_pairs_have_ratios_targets_and_the_variant():
    gscnn, s2 = make_pairs(_records(), ENV, ['fp32'], torch.device('cpu'))
    assert (gscnn['other'], gscnn['baseline'], gscnn['precision']) == ('gscnn', 'base', 'fp32')
    assert gscnn['params_ratio'] == 1.2 and gscnn['flops_ratio'] == pytest.approx(1.2)
    assert gscnn['train_time_ratio'] == pytest.approx(1.1)
    assert gscnn['train_memory_ratio'] == 1.5 and gscnn['infer_time_ratio'] == 1.2
    assert (gscnn['variant'], s2['variant']) == (None, 's2')
    keys = list(s2)
    assert keys.index('variant') == keys.index('shape_stream_stride') + 1
    assert s2['other_options'] == {'model.shape_head.shape_stream.stride': 2}
    # targets by stride: stride 1 met on time, missed on memory and inference
    assert gscnn['targets_met'] == dict(train_time_ratio=True, train_memory_ratio=False,
                                        infer_time_ratio=False)
    assert s2['targets']['train_memory_ratio'] == 1.10
    assert s2['targets_met'] == dict(train_time_ratio=True, train_memory_ratio=True,
                                     infer_time_ratio=True)
    check_complete([gscnn, s2])


def test_tables_with_targets():
    text = render_markdown(_result(_records()))
    assert '## g, fp32' in text
    assert '| gscnn-s2 | `gscnn-s2.py model.shape_head.shape_stream.stride=2` | ' \
           '0.000120 | 1.10 | 104 | 1.05 | 52.0 |' in text
    assert '| gscnn / base | 1.200 | 1.200 | 1.100 (<= 1.15: met) | ' \
           '1.500 (<= 1.25: **missed**) | 1.200 (<= 1.10: **missed**) | not run |' in text
    assert 'not measured' not in text


def test_flops_left_out_show_as_dashes():
    records = _records(flops=(None, None, None))
    result = _result(records)
    assert all(p['flops_ratio'] is None and p['other_flops'] is None
               for p in result['pairs'])
    check_complete(result['pairs'], flops_counted=False)
    with pytest.raises(RuntimeError, match='flops_ratio=None'):
        check_complete(result['pairs'])
    text = render_markdown(result)
    assert '| base | `base.py` | 0.000100 | - | 100 | 1.00 | 50.0 |' in text
    assert '| gscnn / base | 1.200 | - | 1.100 (<= 1.15: met) |' in text


def test_incomplete_figures_are_errors():
    records = _records()
    records[1]['infer']['fp32']['infer_s'] = float('nan')
    with pytest.raises(RuntimeError, match='gscnn fp32: infer_time_ratio=nan'):
        check_complete(make_pairs(records, ENV, ['fp32'], torch.device('cpu')),
                       flops_counted=False)


def test_columns_not_measured_are_listed():
    skipped = [dict(group='g', label='gscnn-s2', config='gscnn-s2.py', options={},
                    variant='s2'), dict(group='h', label='baseline', config='b.py',
                                        options={}, variant=None)]
    text = render_markdown(_result(_records()[:2], time_limit_s=300.0, skipped=skipped))
    assert '- not measured (--time-limit 300 s reached): g/gscnn-s2, h/baseline' in text
    assert '| gscnn / base |' in text and 'gscnn-s2 / base' not in text
