"""Interleaved timing rounds (mmgscnn.benchmark.run): order of the
measurements, the merged figures and the spread of the ratios, the time
limit; a fake measurement and a fake clock, nothing timed."""
import pytest
import torch

from benchmark_helpers import ENV, make_record
from mmgscnn.benchmark import run
from mmgscnn.benchmark.options import BenchmarkOptions
from mmgscnn.benchmark.results import make_pairs, ratio_spread

COLUMNS = [dict(group='g', label='base', config='base.py'),
           dict(group='g', label='gscnn', config='gscnn.py')]
# seconds per training / inference step of each column in each round
STEPS = {('base', 0): (0.10, 0.05), ('gscnn', 0): (0.12, 0.06),
         ('base', 1): (0.20, 0.05), ('gscnn', 1): (0.22, 0.05),
         ('base', 2): (0.10, 0.04), ('gscnn', 2): (0.13, 0.05)}


class FakeMeasure:
    """measure_column's stand-in: records the calls, advances a fake clock."""

    def __init__(self, clock, seconds_per_column=10.0):
        self.calls, self.clock, self.seconds = [], clock, seconds_per_column

    def __call__(self, col, options, device, log, workers, timing_only=False):
        r = sum(1 for label, _ in self.calls if label == col['label'])
        self.calls.append((col['label'], timing_only))
        self.clock[0] += self.seconds
        train, infer = STEPS[(col['label'], r)]
        rec = make_record(col['label'], 100, 1e9, train, 2**20 * (1 + r), infer,
                          stride=None if col['label'] == 'base' else 1)
        rec['train']['fp32']['train_step_s_all'] = [train] * 3
        rec['infer']['fp32']['infer_s_all'] = [infer] * 3
        return rec


@pytest.fixture
def fake_clock(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(run, '_clock', lambda: clock[0])
    return clock


def _measure(clock, **options):
    fake = FakeMeasure(clock)
    opts = BenchmarkOptions(precision=['fp32'], **options)
    records, skipped = run._measure_within_limit(COLUMNS, opts, torch.device('cuda'), 0.0,
                                                 measure=fake)
    return fake.calls, records, skipped


def test_rounds_are_interleaved_and_merged(fake_clock):
    calls, records, skipped = _measure(fake_clock, rounds=3)
    assert calls == [('base', False), ('gscnn', False), ('base', True), ('gscnn', True),
                     ('base', True), ('gscnn', True)]
    assert skipped == []
    base, gscnn = records
    train = base['train']['fp32']
    assert train['train_step_s_rounds'] == [0.10, 0.20, 0.10]
    assert train['train_step_s'] == pytest.approx(0.10)  # median of the 9 steps
    assert len(train['train_step_s_all']) == 9
    assert train['train_peak_memory_bytes'] == 3 * 2**20  # the highest round
    assert gscnn['infer']['fp32']['infer_s_rounds'] == [0.06, 0.05, 0.05]
    pair, = make_pairs(records, ENV, ['fp32'], torch.device('cpu'))
    # per-round ratios 1.2, 1.1, 1.3 (train) and 1.2, 1.0, 1.25 (inference)
    assert pair['train_time_ratio_spread'] == pytest.approx([1.1, 1.3])
    assert pair['infer_time_ratio_spread'] == pytest.approx([1.0, 1.25])
    assert pair['train_time_ratio'] == pytest.approx(0.13 / 0.10)  # medians of 9 steps


def test_one_round_has_no_spread(fake_clock):
    calls, records, _ = _measure(fake_clock, rounds=1)
    assert calls == [('base', False), ('gscnn', False)]
    pair, = make_pairs(records, ENV, ['fp32'], torch.device('cpu'))
    assert pair['train_time_ratio_spread'] is None
    assert ratio_spread(dict(x_rounds=[1.0]), dict(x_rounds=[2.0]), 'x') is None


def test_traffic_only_measures_once(fake_clock):
    calls, _, _ = _measure(fake_clock, rounds=3, traffic_only=True)
    assert calls == [('base', False), ('gscnn', False)]


def test_time_limit_keeps_only_whole_rounds(fake_clock):
    # columns take 10 s each: round 1 ends at 20 s, round 2 would end at 40 s
    calls, records, skipped = _measure(fake_clock, rounds=3, time_limit=35.0)
    assert calls == [('base', False), ('gscnn', False), ('base', True)]
    assert skipped == []  # every column measured, in one round
    assert records[0]['train']['fp32']['train_step_s_rounds'] == [0.10]
    # a first round cut short lists the columns not measured
    fake_clock[0] = 0.0
    calls, records, skipped = _measure(fake_clock, rounds=3, time_limit=15.0)
    assert [c['label'] for c in skipped] == ['gscnn']
    assert calls == [('base', False)]  # then round 2 would pass the limit too
    assert records[0]['train']['fp32']['train_step_s_rounds'] == [0.10]


def test_rounds_must_be_positive():
    with pytest.raises(SystemExit, match='--rounds must be >= 1'):
        BenchmarkOptions(rounds=0)
