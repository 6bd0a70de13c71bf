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
model given is not changed: the count runs on a copy, with the model's
CUDA code paths (as the traffic proxy).
"""
import contextlib
import copy


class _Kernels:
    """A ``torch.compile`` backend (Inductor, counting the graphs it gets)
    and the kernels Inductor generated since the last :meth:`take`."""

    def __init__(self):
        from torch._inductor import metrics
        self._metrics = metrics
        self.graphs = 0
        self._seen = metrics.generated_kernel_count

    def backend(self, gm, example_inputs):
        from torch._inductor.compile_fx import compile_fx
        self.graphs += 1
        return compile_fx(gm, example_inputs)

    def take(self) -> int:
        now = self._metrics.generated_kernel_count
        kernels, self._seen = now - self._seen, now
        return kernels


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


def count_inductor_kernels(model, data, infer_size) -> dict:
    """Kernels Inductor generates for the shape stream and our losses of a
    GSCNN ``model`` in one training step on ``data`` (a batch as the data
    loader gives it) and one inference step at ``infer_size`` (H, W) ->
    dict(train=dict(stream_forward, losses_forward, losses_backward,
    stream_backward, total, graphs, graph_breaks), infer=dict(stream,
    graphs, graph_breaks)); None for a model without a shape stream."""
    import torch

    from mmgscnn.models.decode_heads.gated_shape_head import GatedShapeHead
    from mmgscnn.models.utils import upsample_bilinear
    from .inputs import infer_batch
    from .traffic import cuda_code_paths
    if not isinstance(getattr(model, 'decode_head', None), GatedShapeHead):
        return None
    model = copy.deepcopy(model)
    head = model.decode_head
    train = {}
    with cuda_code_paths(), _fresh_compilation() as counters:
        counter = _Kernels()
        stream = torch.compile(head.shape_stream, backend=counter.backend)
        losses_fn = torch.compile(GatedShapeHead.shape_losses, backend=counter.backend)
        model.train()
        batch = model.data_preprocessor(data, True)
        samples = batch['data_samples']
        feats = model.extract_feat(batch['inputs'], [s.metainfo for s in samples])
        logits, fused = stream(feats, feats.image, feats.image_valid)
        train['stream_forward'] = counter.take()
        with head.fusion.attached(fused):
            seg = head.decoder(feats)
        seg_label = head.decoder._stack_batch_gt(samples).squeeze(1)
        seg = upsample_bilinear(seg, seg_label.shape[-2:], head.align_corners)
        edge_map = None if head.loss_boundary is None else head.edge_map(samples)
        losses = losses_fn(head, seg, logits, seg_label, edge_map)
        train['losses_forward'] = counter.take()
        grads = torch.autograd.grad(sum(losses.values()), [seg, logits], retain_graph=True,
                                    allow_unused=True)
        train['losses_backward'] = counter.take()
        torch.autograd.backward(
            [logits, fused], [torch.ones_like(logits) if grads[1] is None else grads[1],
                              torch.ones_like(fused)])
        train['stream_backward'] = counter.take()
        train['total'] = sum(train.values())
        train.update(graphs=counter.graphs, graph_breaks=_graph_breaks(counters))

    with cuda_code_paths(), _fresh_compilation() as counters, torch.no_grad():
        counter = _Kernels()
        stream = torch.compile(head.shape_stream, backend=counter.backend)
        model.eval()
        batch = model.data_preprocessor(infer_batch(infer_size), False)
        feats = model.extract_feat(batch['inputs'],
                                   [s.metainfo for s in batch['data_samples']])
        stream(feats, feats.image, feats.image_valid)
        infer = dict(stream=counter.take(), graphs=counter.graphs,
                     graph_breaks=_graph_breaks(counters))
    return dict(train=train, infer=infer)


def inductor_kernels_method() -> str:
    """How the kernels are counted, in words (for the JSON and the report)."""
    return ('kernels Inductor generates (torch._inductor.metrics.generated_kernel_count; '
            'Triton on CUDA, C++ on the CPU; operators left to aten such as convolutions '
            'not counted) when the shape stream and GatedShapeHead.shape_losses are '
            'compiled afresh (caches off) with torch.compile, default mode, static '
            "shapes, the model's CUDA code paths; one fp32 training step (forward and "
            'backward of both regions) and one inference step (stream forward, eval)')
