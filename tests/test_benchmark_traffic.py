"""mmgscnn.benchmark.traffic: the full-resolution traffic proxy on
hand-made steps with known counts, on the tiny models, and as
``tools/benchmark.py --traffic-only``."""
import json

import pytest
import torch
import torch.nn.functional as F
from benchmark_helpers import ENV, make_records, make_result, write_tiny_configs
from test_benchmark_run import _tool

from helpers import tiny_model
from mmgscnn.benchmark.inputs import train_batch
from mmgscnn.benchmark.options import BenchmarkError, BenchmarkOptions
from mmgscnn.benchmark.precision import build_optim_wrapper
from mmgscnn.benchmark.report import render_markdown
from mmgscnn.benchmark.results import TRAFFIC_FIGURES, make_traffic_pairs
from mmgscnn.benchmark.traffic import count_traffic, cuda_code_paths, measure_traffic
from mmgscnn.models.shape_stream import shape_stream
from mmgscnn.models.utils import upsample

FULL = (8, 8)


def _nbytes(t):
    return t.numel() * t.element_size()


def test_element_wise_passes_and_their_bytes():
    x = torch.randn(1, 2, *FULL)
    out = count_traffic(lambda: (x * 2) + 1, FULL, training=False)
    # mul reads x, writes y; add reads y, writes z: four tensors of x's size
    assert out['passes_full_res'] == 2 and out['ops_full_res'] == {'mul': 1, 'add': 1}
    assert out['pass_bytes_full_res'] == 4 * _nbytes(x)
    assert out['conv_ops_full_res'] == 0 and 'saved_bytes' not in out
    assert out['pass_bytes'] == out['pass_bytes_full_res']


def test_allocations_without_a_fill_count_nothing():
    """``empty`` launches no kernel; ``zeros`` (a fill) and a write into
    an empty tensor through ``out=`` each count one pass."""
    x = torch.randn(1, 2, *FULL)

    def step():
        buf = torch.empty(1, 4, *FULL)
        torch.zeros(1, 2, *FULL)
        torch.mul(x, 2, out=buf[:, :2])

    out = count_traffic(step, FULL, training=False)
    assert out['passes_full_res'] == 2 and out['ops_full_res'] == {'zeros': 1, 'mul': 1}


def _doubled(x):
    return x * 2


def _normed(module, x):
    return module(x)


def test_passes_are_attributed_to_their_source_lines_and_backward_nodes():
    x = torch.randn(1, 2, *FULL, requires_grad=True)
    out = count_traffic(lambda: _doubled(x).relu().sum().backward(), FULL, training=True)
    here = 'tests/test_benchmark_traffic.py'
    doubled_line = _doubled.__code__.co_firstlineno + 1
    step_line = test_passes_are_attributed_to_their_source_lines_and_backward_nodes \
        .__code__.co_firstlineno + 2
    sources = out['sources_full_res']
    assert sources[f'mul @ {here}:{doubled_line} (_doubled)'] == 1
    assert sources[f'relu @ {here}:{step_line} (<lambda>)'] == 1
    assert sources['threshold_backward @ backward of ReluBackward0'] == 1
    assert sources['mul @ backward of MulBackward0'] == 1
    assert sum(sources.values()) == out['passes_full_res']
    # a module's kernels are attributed to the line that called the module
    norm = torch.nn.Sequential(torch.nn.BatchNorm2d(2))
    out = count_traffic(lambda: _normed(norm, x.detach()), FULL, training=False)
    assert list(out['sources_full_res']) == [
        f'native_batch_norm @ {here}:{_normed.__code__.co_firstlineno + 1} (_normed)']


def test_enlargements_count_at_full_resolution():
    x = torch.randn(1, 2, 4, 4)
    # NCHW and channels-last: one (depthwise, transposed) convolution writes
    # the full-resolution map
    for t in (x, x.contiguous(memory_format=torch.channels_last)):
        out = count_traffic(lambda: upsample.enlarge_bilinear(t, 2, 2), FULL, training=False)
        assert out['ops_full_res'] == {'convolution': 1}, out
        assert out['pass_bytes_full_res'] >= 4 * _nbytes(x)


def test_views_and_low_resolution_tensors_count_nothing():
    x = torch.randn(1, 2, *FULL)
    views = count_traffic(lambda: x.view(1, 2, 64).permute(0, 2, 1), FULL, training=False)
    y = torch.randn(1, 2, 4, 4)
    small = count_traffic(lambda: y * 3, FULL, training=False)
    for out in (views, small):
        assert out['passes_full_res'] == 0 and out['pass_bytes_full_res'] == 0
    assert small['pass_bytes'] == 2 * _nbytes(y)  # the low-resolution product still moves bytes


def test_dense_convolutions_are_compute_depthwise_ones_memory_bound():
    x = torch.randn(1, 2, *FULL)
    dense = count_traffic(lambda: F.conv2d(x, torch.randn(4, 2, 3, 3), padding=1), FULL,
                          training=False)
    depthwise = count_traffic(lambda: F.conv2d(x, torch.randn(2, 1, 3, 3), padding=1,
                                               groups=2), FULL, training=False)
    assert (dense['conv_ops_full_res'], dense['passes_full_res']) == (1, 0)
    assert (depthwise['conv_ops_full_res'], depthwise['passes_full_res']) == (0, 1)
    # the dense convolution reads x (2 channels) and writes 4 channels at full res
    assert dense['conv_bytes_full_res'] == _nbytes(x) * 3
    assert depthwise['conv_bytes_full_res'] == 0
    low = count_traffic(lambda: F.conv2d(torch.randn(1, 2, 4, 4), torch.randn(4, 2, 1, 1)),
                        FULL, training=False)
    assert (low['conv_ops_full_res'], low['conv_bytes_full_res']) == (0, 0)


def test_single_channel_filters_are_memory_bound():
    """A one-channel map filtered by one kernel (``groups=1``), e.g. the
    enlargement of a one-channel gate, is a memory-bound pass forward and
    backward, like a depthwise filter; a dense convolution with two input
    channels per group is not."""
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    out = count_traffic(lambda: upsample.enlarge_bilinear(x, 4, 4).sum().backward(),
                        FULL, training=True)
    assert out['ops_full_res']['convolution'] == 1
    assert out['ops_full_res']['convolution_backward'] == 1
    assert out['conv_ops_full_res'] == 0
    y = torch.randn(1, 1, *FULL)
    single = count_traffic(lambda: F.conv2d(y, torch.randn(1, 1, 3, 3), padding=1), FULL,
                           training=False)
    assert (single['conv_ops_full_res'], single['passes_full_res']) == (0, 1)
    z = torch.randn(1, 2, *FULL)
    pair = count_traffic(lambda: F.conv2d(z, torch.randn(1, 2, 1, 1)), FULL, training=False)
    assert (pair['conv_ops_full_res'], pair['passes_full_res']) == (1, 0)


def test_optimizer_bytes_stay_out_of_the_saved_bytes():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1, momentum=0.9)  # keeps a state
    x = torch.randn(1, 2, *FULL)

    def step(with_optimizer):
        opt.zero_grad()
        conv(x).relu().sum().backward()
        if with_optimizer:
            opt.step()

    without = count_traffic(lambda: step(False), FULL, training=True)
    with_opt = count_traffic(lambda: step(True), FULL, training=True)
    assert opt.state  # the momentum buffers exist
    assert with_opt['saved_bytes'] == without['saved_bytes'] > 0
    # nor are its kernels: the step's own (zero_grad's fill-free reset,
    # conv, relu, sum, ones_like, the backward) are the same either way
    assert with_opt['kernels'] == without['kernels'] > 0


def test_kernels_count_every_kernel_at_any_resolution():
    y = torch.randn(1, 2, 4, 4)
    x = torch.randn(1, 2, *FULL)
    # low resolution: mul, add, sigmoid; views and empty allocations: nothing
    out = count_traffic(lambda: torch.sigmoid(y * 2 + 1).view(-1).new_empty(3), FULL,
                        training=False)
    assert (out['kernels'], out['passes_full_res']) == (3, 0)
    both = count_traffic(lambda: (x * 2, y * 2), FULL, training=False)
    assert (both['kernels'], both['passes_full_res']) == (2, 1)


def test_saved_tensors_are_counted_once_each():
    w = torch.randn(1, 2, *FULL, requires_grad=True)
    low = torch.randn(1, 2, 4, 4, requires_grad=True)
    # mul saves w twice (one tensor), sigmoid its output: two full-res tensors;
    # the low-resolution sigmoid saves one more, not at full resolution
    out = count_traffic(lambda: (torch.sigmoid(w * w).sum() +
                                 torch.sigmoid(low).sum()).backward(), FULL, training=True)
    assert out['saved_bytes_full_res'] == 2 * _nbytes(w)
    assert out['saved_bytes'] == 2 * _nbytes(w) + _nbytes(low)
    assert 'sigmoid_backward' in out['ops_full_res']


def test_cuda_code_paths_are_taken_and_restored():
    before = shape_stream._channels_last_pays_off, upsample._blends_pay_off
    x = torch.randn(1, 2, 4, 4)
    with cuda_code_paths():
        assert shape_stream._channels_last_pays_off(x) and upsample._blends_pay_off(x)
        blended = upsample.upsample_bilinear(x, (8, 8))
    assert (shape_stream._channels_last_pays_off, upsample._blends_pay_off) == before
    assert not upsample._blends_pay_off(x)
    torch.testing.assert_close(blended, F.interpolate(x, (8, 8), mode='bilinear'))


@pytest.fixture(scope='module')
def tiny_traffic():
    """The proxy of the tiny baseline and GSCNN models (32x48 crop)."""
    from mmseg.registry import MODELS
    import mmgscnn  # noqa: F401
    out = {}
    for name, gscnn in (('baseline', False), ('gscnn', True)):
        torch.manual_seed(0)
        model = MODELS.build(tiny_model(gscnn=gscnn))
        ow = build_optim_wrapper(model, {}, 'fp32', torch.device('cpu'))
        out[name] = measure_traffic(model, ow, train_batch(model, 2, (32, 48)), (32, 48),
                                    (48, 64))
    return out


def test_shape_stream_adds_full_resolution_traffic(tiny_traffic):
    base, gscnn = tiny_traffic['baseline'], tiny_traffic['gscnn']
    for step in ('train', 'infer'):
        for key in ('passes_full_res', 'pass_bytes_full_res', 'conv_ops_full_res'):
            assert gscnn[step][key] > base[step][key] > 0, (step, key)
    assert gscnn['train']['saved_bytes_full_res'] > base['train']['saved_bytes_full_res']
    assert base['train']['saved_bytes'] >= base['train']['saved_bytes_full_res'] > 0



def test_traffic_is_counted_on_the_cuda_code_paths():
    """On the CUDA paths the stream's and the losses' integer enlargements
    are transposed convolutions (depthwise ones count as passes), not
    ``upsample_bilinear2d`` kernels with their atomic backward."""
    from mmseg.registry import MODELS
    model = MODELS.build(tiny_model(gscnn=True))
    ow = build_optim_wrapper(model, {}, 'fp32', torch.device('cpu'))
    data = train_batch(model, 2, (32, 48))
    plain = count_traffic(lambda: model.train_step(data, ow), (32, 48), True)['ops_full_res']
    with cuda_code_paths():
        cuda = count_traffic(lambda: model.train_step(data, ow), (32, 48),
                             True)['ops_full_res']
    assert cuda.get('upsample_bilinear2d_backward', 0) < plain['upsample_bilinear2d_backward']
    assert cuda['convolution_backward'] > plain.get('convolution_backward', 0)


def test_traffic_pairs_and_table():
    records = make_records()
    for i, rec in enumerate(records):
        rec['traffic'] = {step: {key: (i + 1) * 10 for s, key in TRAFFIC_FIGURES if s == step}
                          for step in ('train', 'infer')}
    records[0]['traffic']['infer']['conv_ops_full_res'] = 0
    pairs = make_traffic_pairs(records, ENV)
    assert [p['other'] for p in pairs] == ['gscnn', 'gscnn-s2']
    assert pairs[1]['train_passes_full_res_ratio'] == 3.0
    assert pairs[0]['baseline_train_saved_bytes'] == 10
    assert pairs[0]['infer_conv_ops_full_res_ratio'] is None  # baseline's figure is 0
    text = render_markdown(make_result(records, traffic_pairs=pairs))
    assert '## g, full-resolution traffic (fp32, CUDA code paths)' in text
    assert ('| gscnn-s2 / base | 3.00 | 3.00 | 3.00 | 3.00 | 3.00 | 3.00 | 3.00 | 3.00 | '
            '- | 3.00 | 3.00 | 3.00 | 3.00 | 3.00 |\n') in text
    assert '| train kernels, all | infer kernels, all |' in text


def test_traffic_only_refuses_profile():
    with pytest.raises(BenchmarkError, match='--traffic-only'):
        BenchmarkOptions(traffic_only=True, profile='prof')
    assert BenchmarkOptions(traffic_only=True).traffic


def test_tool_traffic_only(tmp_path):
    cfgs = write_tiny_configs(tmp_path)
    out, md = tmp_path / 'res.json', tmp_path / 'res.md'
    proc = _tool('--device', 'cpu', '--configs', f'base={cfgs["baseline"]}',
                 f'gscnn={cfgs["gscnn"]}', '--crop', '32', '48', '--infer-size', '48', '64',
                 '--traffic-only', '--skip-flops', '--threads', '1', '--out', str(out),
                 '--markdown', str(md))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data['pairs'] == [] and data['precisions'] == []
    assert 'traffic' in data['methods']
    (pair, ) = data['traffic_pairs']
    for step, key in TRAFFIC_FIGURES:
        b, o = pair[f'baseline_{step}_{key}'], pair[f'other_{step}_{key}']
        assert b > 0 and pair[f'{step}_{key}_ratio'] == pytest.approx(o / b)
    for rec in data['models']:
        assert rec['train'] == {} and rec['infer'] == {}
    assert 'full-resolution traffic' in md.read_text()
    assert '--traffic-only: no timing' in md.read_text()


def test_saved_tensors_stay_alive_until_the_count_ends():
    """A saved tensor freed early cannot lend its address to a later one
    (which the count would then take for the same tensor): the counter
    holds what autograd saved until its result is read."""
    import weakref
    from mmgscnn.benchmark.traffic import _TrafficCounter
    counter = _TrafficCounter(FULL)
    t = torch.randn(1, 2, *FULL)
    ref = weakref.ref(t)
    counter.pack(t)
    del t
    assert ref() is not None
    assert counter.result(training=True)['saved_bytes_full_res'] == 2 * 64 * 4
