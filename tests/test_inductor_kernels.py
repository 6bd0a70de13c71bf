"""mmgscnn.benchmark.inductor_kernels: kernels Inductor generates for the
shape stream and our losses, counted afresh every time."""
import torch
import torch.nn.functional as F
from helpers import tiny_model
from mmseg.registry import MODELS

from mmgscnn.benchmark.inductor_kernels import _EagerKernels, _fresh_compilation, \
    _Kernels, count_inductor_kernels
from mmgscnn.benchmark.inputs import train_batch


def _count(fn, *args):
    with _fresh_compilation() as counters:
        counter = _Kernels()
        counter.start()
        torch.compile(fn, backend=counter.backend)(*args)
        return counter.take(), counter.graphs, sum(counters['graph_break'].values())


def _count_eager(fn, *args):
    counter = _EagerKernels()
    with counter.mode:
        fn(*args)            # outside the window: not counted
        counter.start()
        fn(*args)
        return counter.take()


def _pointwise(x):  # four operators
    return torch.sigmoid(x * 2 + 1).relu()


def _conv_between(x, w):
    return F.conv2d(x.sigmoid(), w).relu() + 1


def test_hand_made_graphs_counted_every_time():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 1, 1)
    # pointwise ops fuse into one kernel; a convolution (left to aten, not
    # counted) splits the pointwise ops before and after it into two
    assert _count(_conv_between, x, w) == (2, 1, 0)
    # the same function again: compiled (and counted) again, no cache hit
    assert _count(_conv_between, x, w) == (2, 1, 0)
    # eagerly: one kernel per operator but the convolution
    assert _count_eager(_pointwise, x) == 4
    assert _count_eager(_conv_between, x, w) == 3


def test_graph_breaks_counted():
    def broken(x):
        y = x.sin()
        torch._dynamo.graph_break()
        return y.cos()
    assert _count(broken, torch.randn(4)) == (2, 2, 1)


def test_plain_model_has_nothing_to_count():
    model = MODELS.build(tiny_model('fcn', gscnn=False))
    assert count_inductor_kernels(model, train_batch(model, 1, (16, 24)), (16, 24)) is None


def test_tiny_gscnn_counts_and_model_unchanged():
    torch.manual_seed(0)
    # one gate, no stem, the boundary BCE alone: the smallest regions, so the
    # compilation is short (all losses compiled: test_regional_compile.py)
    model = MODELS.build(tiny_model('fcn', shape_stream=dict(
        gate_indices=(3, ), channels=(4, 4), stem_channels=0), head_kwargs=dict(
            loss_attention=None, loss_dual_task=None)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = count_inductor_kernels(model, train_batch(model, 2, (16, 24)), (16, 24))
    train, infer = got['train'], got['infer']
    for part in ('stream_forward', 'losses_forward', 'losses_backward', 'stream_backward'):
        assert train[part] > 0, part
    assert train['total'] == sum(train[p] for p in ('stream_forward', 'losses_forward',
                                                     'losses_backward', 'stream_backward'))
    # one graph per region, no graph break (the losses' autograd Functions
    # are traced whole)
    assert (train['graphs'], train['graph_breaks']) == (2, 0)
    assert (infer['graphs'], infer['graph_breaks']) == (1, 0) and infer['stream'] > 0
    # eval BN folds into fewer kernels than the training forward's batch statistics
    assert infer['stream'] < train['stream_forward']
    # the same windows run eagerly (on the CPU, Inductor's kernels are not
    # fewer than the eager operators: a batch norm is one eager operator but
    # several C++ loops)
    eager = got['eager']
    for part in ('stream_forward', 'losses_forward', 'losses_backward', 'stream_backward'):
        assert eager['train'][part] > 0, part
    assert eager['infer']['stream'] > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not hasattr(model.decode_head.shape_stream, '_orig_mod')
