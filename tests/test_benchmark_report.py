"""mmgscnn.benchmark.report on hand-made records: tables with targets,
FLOPs left out (--skip-flops), columns not measured."""
import pytest

from benchmark_helpers import make_records, make_result
from mmgscnn.benchmark.report import load_warning, render_markdown
from mmgscnn.benchmark.results import TRAFFIC_FIGURES, check_complete


def test_tables_with_targets():
    text = render_markdown(make_result(make_records(), device='cuda'))
    assert '## g, fp32' in text
    assert '| gscnn-s2 | `gscnn-s2.py model.shape_head.shape_stream.stride=2` | ' \
           '0.000120 | 1.10 | 104 | 1.05 | 52.0 |' in text
    assert '| gscnn / base | 1.200 | 1.200 | 1.100 (<= 1.15: met) | ' \
           '1.500 (<= 1.25: **missed**) | 1.200 (<= 1.10: **missed**) | not run |' in text
    assert 'not measured' not in text


def test_flops_left_out_show_as_dashes():
    records = make_records(flops=(None, None, None))
    result = make_result(records, device='cuda')
    assert all(p['flops_ratio'] is None and p['other_flops'] is None
               for p in result['pairs'])
    check_complete(result['pairs'], flops_counted=False)
    with pytest.raises(RuntimeError, match='flops_ratio=None'):
        check_complete(result['pairs'])
    text = render_markdown(result)
    assert '| base | `base.py` | 0.000100 | - | 100 | 1.00 | 50.0 |' in text
    assert '| gscnn / base | 1.200 | - | 1.100 (<= 1.15: met) |' in text


def test_columns_not_measured_are_listed():
    skipped = [dict(group='g', label='gscnn-s2', config='gscnn-s2.py', options={},
                    variant='s2'), dict(group='h', label='baseline', config='b.py',
                                        options={}, variant=None)]
    text = render_markdown(make_result(make_records()[:2], time_limit_s=300.0, skipped=skipped))
    assert '- not measured (--time-limit 300 s reached): g/gscnn-s2, h/baseline' in text
    assert '| gscnn / base |' in text and 'gscnn-s2 / base' not in text


def test_cpu_timings_get_no_verdicts():
    result = make_result(make_records())
    assert all(p['targets_met'] == {} for p in result['pairs'])
    assert all(p['targets'] for p in result['pairs'])  # the targets are still listed
    text = render_markdown(result)
    assert '| gscnn / base | 1.200 | 1.200 | 1.100 | 1.500 | 1.200 | not run |' in text
    assert 'met)' not in text and 'missed' not in text


def test_load_above_the_core_count_is_warned_on_cpu_only():
    result = make_result(make_records())
    result['environment'].update(cpu_count=2, load_average_start=1.5, load_average_end=2.0)
    assert load_warning(result['environment']) is None  # equal to the cores: fine
    assert 'warning: host load' not in render_markdown(result)
    result['environment']['load_average_end'] = 3.25
    assert '**warning: host load average 3.25 exceeded its 2 cores' in render_markdown(result)
    cuda = make_result(make_records(), device='cuda')
    cuda['environment'].update(cpu_count=2, load_average_start=9.0)
    assert load_warning(cuda['environment']) is None


def test_ratio_spread_is_printed_next_to_the_ratio():
    result = make_result(make_records(), device='cuda')
    result['pairs'][0]['train_time_ratio_spread'] = [1.05, 1.125]
    text = render_markdown(result)
    assert '| gscnn / base | 1.200 | 1.200 | 1.100 (1.050-1.125) (<= 1.15: met) |' in text


def test_traffic_only_shows_size_and_no_timing_header():
    records = make_records()
    for rec in records:
        rec['traffic'] = {step: {key: 1 for s, key in TRAFFIC_FIGURES if s == step}
                          for step in ('train', 'infer')}
    result = make_result(records, traffic_pairs=[])
    result.update(precisions=[], pairs=[])
    text = render_markdown(result)
    assert 'warm-up 0, timed 1' not in text and 'Targets' not in text
    assert '## g, size' in text
    assert '| gscnn | `gscnn.py` | 0.000120 | 1.20 |' in text
    assert '## g, fp32' not in text
