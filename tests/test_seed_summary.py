"""mmgscnn.experiments.seed_summary: mean and range over seeds, the metric
order and the Markdown table, on hand-made numbers."""
from mmgscnn.experiments.seed_summary import markdown_table, metric_order, summarise


def test_summary_over_seeds_and_table():
    per_seed = {'a': {0: {'mIoU': 10.0, 'mBF@2px': 1.0, 'x': float('nan')},
                      1: {'mIoU': 20.0, 'mBF@2px': 3.0, 'x': 4.0}},
                'b': {0: {'mIoU': 30.0, 'mBF@10px': 5.0}},
                'c': {}}  # no finished run
    summary = summarise(per_seed)
    assert summary['a'] == {'mIoU': (15.0, 10.0, 20.0), 'mBF@2px': (2.0, 1.0, 3.0),
                            'x': (4.0, 4.0, 4.0)}
    assert summary['b'] == {'mIoU': (30.0, 30.0, 30.0), 'mBF@10px': (5.0, 5.0, 5.0)}
    assert 'c' not in summary
    lines = markdown_table(summary, ['a', 'b', 'c'])
    assert lines[0] == '| metric | a | b | c |'
    assert lines[2] == '| mIoU | 15.00 (10.00..20.00) | 30.00 (30.00..30.00) |  |'
    assert [line.split(' |')[0] for line in lines[3:]] == ['| mBF@2px', '| mBF@10px', '| x']


def test_metric_order():
    keys = ['aAcc', 'whole/IoU.pole@crop0', 'mIoU@crop100', 'mBF@10px', 'mIoU', 'mBF@2px',
            'mIoU@crop0', 'IoU.sky@crop0', 'mBIoU']
    assert sorted(keys, key=metric_order) == [
        'mIoU', 'mBF@2px', 'mBF@10px', 'mBIoU', 'mIoU@crop0', 'mIoU@crop100', 'IoU.sky@crop0',
        'whole/IoU.pole@crop0', 'aAcc']
