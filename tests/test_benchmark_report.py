"""mmgscnn.benchmark.report on hand-made records: tables with targets,
FLOPs left out (--skip-flops), columns not measured."""
import pytest

from benchmark_helpers import make_records, make_result
from mmgscnn.benchmark.report import render_markdown
from mmgscnn.benchmark.results import check_complete


def test_tables_with_targets():
    text = render_markdown(make_result(make_records()))
    assert '## g, fp32' in text
    assert '| gscnn-s2 | `gscnn-s2.py model.shape_head.shape_stream.stride=2` | ' \
           '0.000120 | 1.10 | 104 | 1.05 | 52.0 |' in text
    assert '| gscnn / base | 1.200 | 1.200 | 1.100 (<= 1.15: met) | ' \
           '1.500 (<= 1.25: **missed**) | 1.200 (<= 1.10: **missed**) | not run |' in text
    assert 'not measured' not in text


def test_flops_left_out_show_as_dashes():
    records = make_records(flops=(None, None, None))
    result = make_result(records)
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
