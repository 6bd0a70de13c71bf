"""A device-independent proxy of memory traffic: what one step does with
full-resolution tensors (``--traffic``).

On a GPU the shape stream's cost is in memory-bound passes over large
tensors (norms, activations, element-wise ops, concatenations), not in its
FLOPs. Without a GPU those passes can still be counted: every aten operator
of one training step (forward, losses, backward, optimizer step) and of one
inference step is seen once by a dispatch mode, below autograd, so a
composite operator is counted as the kernels it runs.

Counted, for tensors whose last two dims are the step's full resolution
(the crop in training, the image in inference):

- ``saved_bytes`` / ``saved_bytes_full_res``: bytes of the distinct tensors
  autograd saves for the backward pass (all / full resolution only); the
  optimizer's state is not among them (its step runs outside autograd);
- ``passes_full_res``: operators that read or write a full-resolution tensor
  and are memory-bound (all but dense convolutions and matrix products;
  depthwise convolutions count as memory-bound; a convolution with a fused
  bias/add/ReLU epilogue, :mod:`mmgscnn.models.utils.conv_act`, is one
  dense-convolution kernel); views and allocations without a fill
  (``empty``) count nothing;
- ``pass_bytes_full_res``: bytes of the distinct full-resolution tensors
  those operators read and write (a lower bound of their traffic);
- ``conv_ops_full_res`` / ``conv_bytes_full_res``: dense convolutions
  (forward or backward) at full resolution / bytes of the distinct
  full-resolution tensors they read and write (their inputs and outputs
  cross memory too);
- ``pass_bytes``: bytes of the distinct tensors every memory-bound operator
  reads and writes, at any resolution (the step's memory-bound traffic);
- ``kernels``: every kernel of the step at any resolution (forward, losses
  and backward; without the optimizer step, which runs one fused kernel
  per group of parameters on CUDA but one per parameter on the CPU), each
  a launch (the GPU's fixed cost per kernel);
- ``sources_full_res``: the full-resolution passes by kernel and source,
  ``'<kernel> @ <file>:<line> (<function>)'`` for the innermost Python
  frame outside torch that called it (forward), ``'<kernel> @ backward of
  <autograd node>'`` in the backward pass; the counts add up to
  ``passes_full_res``.

The model's CUDA code paths (channels-last stream, enlargement by blends)
are counted wherever the proxy runs, so a CPU count describes a CUDA step.
"""
import contextlib
import copy
import os
import sys

from mmgscnn.deploy.fuse_bn import fuse_bn

from .inputs import infer_batch

# compute-bound kernels as the dispatch mode sees them (linear and matmul
# arrive decomposed into these; mmgscnn's conv + bias (+ add) + ReLU
# operators are one convolution kernel with an epilogue)
_COMPUTE_OPS = {'convolution', 'convolution_backward', 'mm', 'addmm', 'bmm', 'baddbmm',
                'conv2d_relu', 'conv2d_add_relu'}
# allocations that launch no kernel (no fill): neither passes nor bytes
_ALLOC_OPS = {'empty', 'empty_like', 'empty_strided', 'new_empty', 'new_empty_strided',
              'empty_permuted'}
# convolution op -> argument index of its weight
_CONV_WEIGHT = {'convolution': 1, 'convolution_backward': 2, 'conv2d_relu': 1,
                'conv2d_add_relu': 1}


def _tensors(tree):
    import torch
    from torch.utils._pytree import tree_leaves
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _is_full_res(t, size):
    """Whether ``t`` holds maps of ``size`` (H, W): (..., H, W); (..., H, W, C)
    (a channels-last layout made explicit); (..., H, w, s) or (..., H, w, s, C)
    with w * s = W (an enlargement by blends before its final reshape)."""
    h, w = size
    s = tuple(t.shape)
    return ((len(s) >= 3 and s[-2:] == (h, w)) or (len(s) >= 4 and s[-3:-1] == (h, w))
            or (len(s) >= 5 and ((s[-3] == h and s[-2] * s[-1] == w) or
                                 (s[-4] == h and s[-3] * s[-2] == w))))


def _nbytes(t):
    return t.numel() * t.element_size()


def _key(t):
    """Identity of a tensor's memory: (storage address, offset, shape)."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)


def _is_depthwise(name, args):
    """A convolution (``aten.convolution``, its backward or a fused
    conv + ReLU) whose weight has one channel per group in its second
    dimension (one input channel per group; for a transposed convolution,
    one output channel per group): a memory-bound filter, like a blur, a
    Sobel operator or a bilinear enlargement, whatever the number of groups
    (a single-channel map filtered by one kernel, ``groups=1``, is one
    too)."""
    return name in _CONV_WEIGHT and args[_CONV_WEIGHT[name]].shape[1] == 1


_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SKIPPED = (os.sep + 'torch' + os.sep, os.path.dirname(os.path.abspath(__file__)) + os.sep,
            os.sep + 'contextlib.py')


def _short_path(path):
    if 'site-packages' + os.sep in path:
        return path.split('site-packages' + os.sep, 1)[1]
    return os.path.relpath(path, _REPO) if path.startswith(_REPO + os.sep) else path


def _source():
    """Where the kernel being recorded comes from: the autograd node in the
    backward pass, else the innermost Python frame outside torch and this
    package (file:line and function)."""
    import torch
    node = torch._C._current_autograd_node()
    if node is not None:
        return f'backward of {node.name()}'
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not any(part in path for part in _SKIPPED):
            return f'{_short_path(path)}:{frame.f_lineno} ({frame.f_code.co_name})'
        frame = frame.f_back
    return 'unknown'


class _TrafficCounter:
    """Collects the counts of one step at full resolution ``size`` (H, W)."""

    def __init__(self, size):
        self.size = tuple(size)
        self.passes = 0
        self.pass_bytes = 0
        self.conv_ops = 0
        self.conv_bytes = 0
        self.all_pass_bytes = 0
        self.kernels = 0
        self.in_optimizer = False
        self.ops = {}
        self.sources = {}
        self._saved = {}

    def record_op(self, func, args, kwargs, out):
        if func.is_view or func.overloadpacket.__name__ in _ALLOC_OPS:
            return
        if not self.in_optimizer and func.namespace != 'profiler':  # record_function: no kernel
            self.kernels += 1
        tensors = {_key(t): t for t in _tensors((args, kwargs)) + _tensors(out)}
        full = {k: t for k, t in tensors.items() if _is_full_res(t, self.size)}
        name = func.overloadpacket.__name__
        compute = name in _COMPUTE_OPS and not _is_depthwise(name, args)
        if not compute:
            self.all_pass_bytes += sum(_nbytes(t) for t in tensors.values())
        if not full:
            return
        if compute:
            self.conv_ops += 1
            self.conv_bytes += sum(_nbytes(t) for t in full.values())
            return
        self.passes += 1
        self.pass_bytes += sum(_nbytes(t) for t in full.values())
        self.ops[name] = self.ops.get(name, 0) + 1
        key = f'{name} @ {_source()}'
        self.sources[key] = self.sources.get(key, 0) + 1

    def pack(self, t):
        # the tensor itself is held until the count ends: a saved tensor freed
        # early (its part of the graph dropped) cannot lend its address to a
        # later one, which would then be taken for the same tensor
        self._saved.setdefault(_key(t), (_nbytes(t), _is_full_res(t, self.size), t))
        return t

    def result(self, training):
        out = dict(passes_full_res=self.passes, pass_bytes_full_res=self.pass_bytes,
                   conv_ops_full_res=self.conv_ops, conv_bytes_full_res=self.conv_bytes,
                   pass_bytes=self.all_pass_bytes, kernels=self.kernels,
                   ops_full_res=dict(sorted(self.ops.items(), key=lambda kv: -kv[1])),
                   sources_full_res=dict(sorted(self.sources.items(),
                                                key=lambda kv: (-kv[1], kv[0]))))
        if training:
            out['saved_bytes'] = sum(n for n, _, _ in self._saved.values())
            out['saved_bytes_full_res'] = sum(n for n, full, _ in self._saved.values() if full)
        return out


@contextlib.contextmanager
def cuda_code_paths():
    """Let the model take the code paths it takes on CUDA, on any device:
    the stream channels-last, integer enlargements by blends."""
    from mmgscnn.models.losses import dual_task_loss
    from mmgscnn.models.shape_stream import shape_stream
    from mmgscnn.models.utils import upsample
    saved = (shape_stream._channels_last_pays_off, upsample._blends_pay_off,
             dual_task_loss._cuda_paths)
    shape_stream._channels_last_pays_off = lambda x: True
    upsample._blends_pay_off = lambda x: True
    dual_task_loss._cuda_paths = lambda x: True
    try:
        yield
    finally:
        (shape_stream._channels_last_pays_off, upsample._blends_pay_off,
         dual_task_loss._cuda_paths) = saved


def count_traffic(fn, size, training):
    """Run ``fn()`` once and count its full-resolution traffic at ``size``
    (H, W) -> dict (see the module docstring); ``training``: also the bytes
    autograd saves for the backward pass."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    counter = _TrafficCounter(size)

    class Mode(TorchDispatchMode):

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            counter.record_op(func, args, kwargs or {}, out)
            return out

    hooks = (torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t)
             if training else contextlib.nullcontext())

    def optimizer_step(running):
        def hook(*_):
            counter.in_optimizer = running
        return hook

    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)
    handles = (register_optimizer_step_pre_hook(optimizer_step(True)),
               register_optimizer_step_post_hook(optimizer_step(False)))
    try:
        with hooks, Mode():
            fn()
    finally:
        for handle in handles:
            handle.remove()
    return counter.result(training)


def measure_traffic(model, optim_wrapper, data, crop, infer_size):
    """The proxy of one training step (``model.train_step`` on ``data``,
    crop (H, W)) and one inference step (``model.test_step``, one image of
    ``infer_size``, batch norms folded, conv -> ReLU fused), fp32, CUDA code
    paths ->
    dict(train=..., infer=...)."""
    import torch
    with cuda_code_paths():
        model.train()
        train = count_traffic(lambda: model.train_step(data, optim_wrapper), crop, True)
        fused = fuse_bn(copy.deepcopy(model))  # as the inference column runs
        batch = infer_batch(infer_size)
        with torch.no_grad():
            infer = count_traffic(lambda: fused.test_step(batch), infer_size, False)
    return dict(train=train, infer=infer)


def traffic_method():
    """How the proxy is counted, in words (for the JSON and the report)."""
    return ('one fp32 training step and one inference step under a dispatch mode '
            '(every aten kernel, forward, backward and optimizer step) with the '
            "model's CUDA code paths, batch norms folded for inference and each "
            'folded conv -> ReLU (conv -> add -> ReLU) run as one operator; full '
            'resolution = the crop (training) or the image (inference); passes: '
            'memory-bound kernels (all but dense convolutions and matrix products; a '
            'convolution with a fused bias/add/ReLU epilogue is one dense-convolution '
            'kernel) that read or write a full-resolution tensor; bytes: the distinct '
            'full-resolution tensors they touch (all bytes: every memory-bound kernel, '
            'any resolution); kernels: every kernel at any resolution, without the '
            'optimizer step; conv bytes: the distinct '
            'full-resolution tensors dense convolutions read and write; saved: '
            'distinct tensors autograd keeps for the backward pass (no optimizer state)')
