"""How many kernels Inductor generates for the regions that
``shape_head.compile`` compiles: the shape stream and our losses
(``tools/benchmark.py --inductor-kernels``).

Each region is compiled afresh (Dynamo reset, Inductor's caches off) by a
backend that hands every captured graph to Inductor's ``compile_fx`` and
counts the graphs; ``torch._inductor.metrics.generated_kernel_count`` gives
the kernels Inductor writes for them (Triton on CUDA, C++ on the CPU; the
convolutions and other operators it leaves to aten are not in the count).
A training step is split into four counts: stream forward, losses forward,
losses backward, stream backward (the backward graphs are compiled at the
first backward pass); inference is the stream's forward in eval mode. The
same regions run eagerly give the kernels Inductor replaces (``eager``). The
model given is not changed: the count runs on a copy. The model takes the
code paths of the device it is on (on the CPU, not the CUDA paths the
traffic proxy forces: Inductor's CPU backend cannot compile all of them, e.g.
the backward pass of a replicate padding of channels-last maps fails its
stride check).
"""
import contextlib
import copy


class _Kernels:
    """A ``torch.compile`` backend (Inductor, counting the graphs it gets)
    and the kernels Inductor generates between :meth:`start` and :meth:`take`."""

    def __init__(self):
        from torch._inductor import metrics
        self._metrics = metrics
        self.graphs = 0
        self._seen = metrics.generated_kernel_count

    def backend(self, gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx
        self.graphs += 1
        return compile_fx(gm, example_inputs)

    def start(self):
        self._seen = self._metrics.generated_kernel_count

    def take(self) -> int:
        return self._metrics.generated_kernel_count - self._seen


class _EagerKernels:
    """The same windows run eagerly: aten operators that launch a kernel
    Inductor could generate (not views, not allocations, not the dense
    convolutions and matrix products it leaves to aten)."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode
        from .traffic import _COMPUTE_OPS
        counter = self
        self.count, self.active = 0, False

        class Mode(TorchDispatchMode):

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.overloadpacket.__name__
                if (counter.active and not func.is_view and name not in _COMPUTE_OPS
                        and not name.startswith('empty')):
                    counter.count += 1
                return func(*args, **(kwargs or {}))

        self.mode = Mode()

    def start(self):
        self.count, self.active = 0, True

    def take(self) -> int:
        self.active = False
        return self.count


@contextlib.contextmanager
def _fresh_compilation():
    """No compiled code or cache reused: every region is compiled (and
    counted) here; Dynamo's counters of graph breaks start from zero."""
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters
    from torch._inductor import config
    torch._dynamo.reset()
    counters.clear()
    try:
        with config.patch(force_disable_caches=True):
            yield counters
    finally:
        torch._dynamo.reset()


def _graph_breaks(counters) -> int:
    return sum(counters['graph_break'].values())


def _training_step(model, data, stream, losses_fn, counter) -> dict:
    """One training step of the two regions (``stream``: the shape stream
    or its compiled form, ``losses_fn``: ``shape_losses`` or its compiled
    form); ``counter`` counts each region's forward and backward."""
    import torch

    from mmgscnn.models.utils import upsample_bilinear
    head = model.decode_head
    model.train()
    batch = model.data_preprocessor(data, True)
    samples = batch['data_samples']
    feats = model.extract_feat(batch['inputs'], [s.metainfo for s in samples])
    counts = {}
    counter.start()
    logits, fused = stream(feats, feats.inputs, feats.image_valid, feats.pixel_affine)
    counts['stream_forward'] = counter.take()
    with head.fusion.attached(fused):
        seg = head.decoder(feats)
    seg_label = head.decoder._stack_batch_gt(samples).squeeze(1)
    seg = upsample_bilinear(seg, seg_label.shape[-2:], head.align_corners)
    edge_map = None if head.loss_boundary is None else head.edge_map(samples)
    counter.start()
    losses = losses_fn(head, seg, logits, seg_label, edge_map)
    counts['losses_forward'] = counter.take()
    counter.start()
    grads = torch.autograd.grad(sum(losses.values()), [seg, logits], retain_graph=True,
                                allow_unused=True)
    counts['losses_backward'] = counter.take()
    # the stream's backward down to its inputs (the backbone's is not ours)
    inputs = [t for t in list(feats) + list(head.shape_stream.parameters())
              if t.requires_grad]
    counter.start()
    torch.autograd.grad([logits, fused],
                        inputs, [torch.ones_like(logits) if grads[1] is None else grads[1],
                                 torch.ones_like(fused)], allow_unused=True)
    counts['stream_backward'] = counter.take()
    counts['total'] = sum(counts.values())
    return counts


def _inference_step(model, infer_size, stream, counter) -> int:
    """The stream's forward in eval mode on one image of ``infer_size``."""
    import torch

    from .inputs import infer_batch
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(infer_batch(infer_size), False)
        feats = model.extract_feat(batch['inputs'],
                                   [s.metainfo for s in batch['data_samples']])
        counter.start()
        stream(feats, feats.inputs, feats.image_valid, feats.pixel_affine)
        return counter.take()


def count_inductor_kernels(model, data, infer_size) -> dict:
    """Kernels Inductor generates for the shape stream and our losses of a
    GSCNN ``model`` in one training step on ``data`` (a batch as the data
    loader gives it) and one inference step at ``infer_size`` (H, W) ->
    dict(train=dict(stream_forward, losses_forward, losses_backward,
    stream_backward, total, graphs, graph_breaks), infer=dict(stream,
    graphs, graph_breaks), eager=dict(train=..., infer=...): the eager
    kernels of the same windows, see :class:`_EagerKernels`); None for a
    model without a shape stream."""
    import torch

    from mmgscnn.models.decode_heads.gated_shape_head import GatedShapeHead
    if not isinstance(getattr(model, 'decode_head', None), GatedShapeHead):
        return None
    model = copy.deepcopy(model)
    head = model.decode_head
    with _fresh_compilation() as counters:
        counter = _Kernels()
        train = _training_step(
            model, data, torch.compile(head.shape_stream, backend=counter.backend),
            torch.compile(GatedShapeHead.shape_losses, backend=counter.backend), counter)
        train.update(graphs=counter.graphs, graph_breaks=_graph_breaks(counters))
    with _fresh_compilation() as counters:
        counter = _Kernels()
        infer = dict(stream=_inference_step(
            model, infer_size, torch.compile(head.shape_stream, backend=counter.backend),
            counter), graphs=counter.graphs, graph_breaks=_graph_breaks(counters))
    eager = _EagerKernels()
    with eager.mode:
        eager_counts = dict(
            train=_training_step(model, data, head.shape_stream,
                                 GatedShapeHead.shape_losses, eager),
            infer=dict(stream=_inference_step(model, infer_size, head.shape_stream, eager)))
    return dict(train=train, infer=infer, eager=eager_counts)


def inductor_kernels_method() -> str:
    """How the kernels are counted, in words (for the JSON and the report)."""
    return ('kernels Inductor generates (torch._inductor.metrics.generated_kernel_count; '
            'Triton on CUDA, C++ on the CPU; operators left to aten such as convolutions '
            'not counted) when the shape stream and GatedShapeHead.shape_losses are '
            'compiled afresh (caches off) with torch.compile, default mode, static '
            "shapes, the model's code paths on the device used; one fp32 training step (forward and "
            'backward of both regions) and one inference step (stream forward, eval); '
            'eager: the aten kernels of the same regions run eagerly, without views, '
            'allocations, dense convolutions and matrix products')
