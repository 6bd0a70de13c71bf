"""mmgscnn.benchmark.results on hand-made records: pairs with ratios,
targets and the variant; incomplete figures are errors."""
import pytest
import torch

from benchmark_helpers import ENV, make_records
from mmgscnn.benchmark.results import check_complete, make_pairs


def test_pairs_have_ratios_targets_and_the_variant():
    gscnn, s2 = make_pairs(make_records(), dict(ENV, device_type='cuda'), ['fp32'],
                           torch.device('cuda'))
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


def test_incomplete_figures_are_errors():
    records = make_records()
    records[1]['infer']['fp32']['infer_s'] = float('nan')
    with pytest.raises(RuntimeError, match='gscnn fp32: infer_time_ratio=nan'):
        check_complete(make_pairs(records, ENV, ['fp32'], torch.device('cpu')),
                       flops_counted=False)
