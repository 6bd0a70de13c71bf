"""A 2-D convolution with its bias, residual add and ReLU in one operator,
for inference: ``relu(conv(x, W) + b)`` (``mmgscnn::conv2d_relu``) and
``relu(conv(x, W) + b + z)`` (``mmgscnn::conv2d_add_relu``).

Once batch norms are folded (:mod:`mmgscnn.deploy.fuse_bn`), a ConvModule
with a ReLU is a convolution then an in-place ReLU, and a ResNet BasicBlock
ends with a convolution, an in-place add of its input and a ReLU: two and
three passes over the output. cuDNN runs each as one kernel, with the
bias/add/ReLU as the convolution's epilogue (``aten.cudnn_convolution_relu``,
``aten.cudnn_convolution_add_relu``).

Paths (both ops; x (N, C, H, W), weight (O, C / groups, k_h, k_w), bias (O,)
or None, z like the output (N, O, H', W')):

- portable (CPU, any device): ``F.conv2d`` then ``add_`` then ``relu_``,
  today's result exactly;
- CUDA: the cuDNN fused op, where :func:`probe_cudnn_fusion` (run once per
  device by :func:`mmgscnn.deploy.fuse_conv_act.fuse_conv_act`, not in
  forward) found it running and equal to the portable path for the dtype
  (float32/float16/bfloat16, x, weight, bias and z alike) and layout
  (contiguous or channels-last); anything else takes the portable path.

Inference only: called with grad enabled on tensors that require grad they
raise (no backward is defined). Each op has a fake (meta) implementation
for ``torch.compile`` and dispatch modes, and an autocast rule (CPU, CUDA)
that casts float inputs to the autocast dtype, as autocast does for
``conv2d``.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

_GRAD_ERROR = ('{op} is an inference-only operator (no backward): it was called with grad '
               'enabled on a tensor that requires grad. Call fuse_bn / fuse_conv_act only on '
               'a model used for inference, and run it under torch.no_grad() or '
               'torch.inference_mode()')

# (op, device, dtype, channels_last) -> whether the cuDNN fused op runs and
# agrees with the portable path; filled by probe_cudnn_fusion
_CUDNN_OK = {}
_PROBES = {}  # device -> probe_cudnn_fusion's answer
_FAILED_AT_RUN = set()
# max |fused - portable| / (1 + max |portable|) a probe accepts (float32 may
# run in TF32 on either path, in a different summation order)
_PROBE_TOL = {torch.float32: 1e-2, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _portable(x, weight, bias, z, stride, padding, dilation, groups):
    out = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if z is not None:
        out.add_(z)
    return out.relu_()


def _channels_last(x: Tensor, weight: Tensor) -> bool:
    """cuDNN's choice of layout: channels-last if x or weight is."""
    return any(t.dim() == 4 and not t.is_contiguous()
               and t.is_contiguous(memory_format=torch.channels_last) for t in (x, weight))


def _cudnn_fused(op: str, x, weight, bias, z) -> bool:
    """Whether the probed cuDNN fused op serves these inputs (metadata only)."""
    tensors = [t for t in (x, weight, bias, z) if t is not None]
    if not torch.backends.cudnn.enabled or any(t.dtype != x.dtype for t in tensors):
        return False
    return _CUDNN_OK.get((op, x.device, x.dtype, _channels_last(x, weight)), False)


def _cudnn_op(x, weight, bias, z, stride, padding, dilation, groups):
    """cuDNN's fused kernel: relu(conv(x) + bias (+ z)) (CUDA only)."""
    if z is None:
        return torch.ops.aten.cudnn_convolution_relu(x, weight, bias, stride, padding,
                                                     dilation, groups)
    return torch.ops.aten.cudnn_convolution_add_relu(x, weight, z, 1.0, bias, stride, padding,
                                                     dilation, groups)


def _cuda(op: str, x, weight, bias, z, stride, padding, dilation, groups):
    if _cudnn_fused(op, x, weight, bias, z):
        try:
            return _cudnn_op(x, weight, bias, z, stride, padding, dilation, groups)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:  # a configuration the probe did not cover
            key = (op, x.device, x.dtype, tuple(weight.shape), tuple(stride), tuple(padding),
                   tuple(dilation), groups)
            if key not in _FAILED_AT_RUN:
                _FAILED_AT_RUN.add(key)
                print_log(f'mmgscnn.{op}: the cuDNN fused kernel failed for {key} ({err}); '
                          'the portable path (conv, add, relu) runs instead', logger='current')
    return _portable(x, weight, bias, z, stride, padding, dilation, groups)


def _refuse_grad(op: str):
    def setup_context(ctx, inputs, output):
        raise RuntimeError(_GRAD_ERROR.format(op=f'mmgscnn.{op}'))
    return setup_context


def _no_backward(ctx, grad):  # never reached: setup_context raises first
    raise RuntimeError(_GRAD_ERROR.format(op='mmgscnn conv+ReLU'))


@torch.library.custom_op('mmgscnn::conv2d_relu', mutates_args=())
def _conv2d_relu_op(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: List[int],
                    padding: List[int], dilation: List[int], groups: int) -> Tensor:
    return _portable(x, weight, bias, None, stride, padding, dilation, groups)


@_conv2d_relu_op.register_kernel('cuda')
def _conv2d_relu_cuda(x, weight, bias, stride, padding, dilation, groups):
    return _cuda('conv2d_relu', x, weight, bias, None, stride, padding, dilation, groups)


@_conv2d_relu_op.register_fake
def _conv2d_relu_fake(x, weight, bias, stride, padding, dilation, groups):
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


@torch.library.custom_op('mmgscnn::conv2d_add_relu', mutates_args=())
def _conv2d_add_relu_op(x: Tensor, weight: Tensor, bias: Optional[Tensor], z: Tensor,
                        stride: List[int], padding: List[int], dilation: List[int],
                        groups: int) -> Tensor:
    return _portable(x, weight, bias, z, stride, padding, dilation, groups)


@_conv2d_add_relu_op.register_kernel('cuda')
def _conv2d_add_relu_cuda(x, weight, bias, z, stride, padding, dilation, groups):
    return _cuda('conv2d_add_relu', x, weight, bias, z, stride, padding, dilation, groups)


@_conv2d_add_relu_op.register_fake
def _conv2d_add_relu_fake(x, weight, bias, z, stride, padding, dilation, groups):
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


_conv2d_relu_op.register_autograd(_no_backward, setup_context=_refuse_grad('conv2d_relu'))
_conv2d_add_relu_op.register_autograd(_no_backward,
                                      setup_context=_refuse_grad('conv2d_add_relu'))

_LIB = torch.library.Library('mmgscnn', 'FRAGMENT')  # the autocast rules


def _autocast_rule(op, device_type: str):
    """Cast float32/16/bf16 tensors to the autocast dtype (float64 stays, as
    autocast leaves it for conv2d), then run ``op`` with autocast off."""
    def kernel(*args):
        dtype = torch.get_autocast_dtype(device_type)
        args = [a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point()
                and a.dtype != torch.float64 else a for a in args]
        with torch.autocast(device_type, enabled=False):
            return op(*args)
    return kernel


for _name in ('conv2d_relu', 'conv2d_add_relu'):
    for _device, _key in (('cpu', 'AutocastCPU'), ('cuda', 'AutocastCUDA')):
        _LIB.impl(_name, _autocast_rule(getattr(torch.ops.mmgscnn, _name).default, _device),
                  _key)


def _pair(v) -> List[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(i) for i in v]


def _check_grad(op: str, tensors) -> None:
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        raise RuntimeError(_GRAD_ERROR.format(op=f'mmgscnn.{op}'))


def conv2d_relu(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1, padding=0,
                dilation=1, groups: int = 1) -> Tensor:
    """``relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))``
    in one operator (one cuDNN kernel where probed); inference only.
    x (N, C, H, W), weight (O, C / groups, k_h, k_w), bias (O,) -> (N, O, H', W');
    stride/padding/dilation: int or pair (zero padding)."""
    _check_grad('conv2d_relu', (x, weight, bias))
    return _conv2d_relu_op(x, weight, bias, _pair(stride), _pair(padding), _pair(dilation),
                           int(groups))


def conv2d_add_relu(x: Tensor, weight: Tensor, bias: Optional[Tensor], z: Tensor, stride=1,
                    padding=0, dilation=1, groups: int = 1) -> Tensor:
    """``relu(F.conv2d(x, weight, bias, ...) + z)`` in one operator (one
    cuDNN kernel where probed); inference only. z: the convolution's output
    shape (N, O, H', W'), e.g. a residual block's identity."""
    _check_grad('conv2d_add_relu', (x, weight, bias, z))
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_hw = [(s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, d, k, st in
              zip(x.shape[-2:], padding, dilation, weight.shape[-2:], stride)]
    expected = (x.shape[0], weight.shape[0], *out_hw)
    if tuple(z.shape) != expected:
        raise ValueError(f'conv2d_add_relu: z must have the convolution output shape '
                         f'{expected}, got {tuple(z.shape)}')
    return _conv2d_add_relu_op(x, weight, bias, z, stride, padding, dilation, int(groups))


def _probe_one(op: str, device, dtype, channels_last: bool) -> Optional[str]:
    """Run the cuDNN fused op and the portable path on small random inputs
    (3x3, 3x3 dilated by 2, 1x1; with and without bias); None if they
    agree, else why not."""
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device, dtype).contiguous(
            memory_format=fmt if len(shape) == 4 else torch.contiguous_format)

    x = rand(2, 16, 10, 12)
    z = rand(2, 16, 10, 12) if op == 'conv2d_add_relu' else None
    cases = [(kernel, [pad, pad], [dil, dil], bias)
             for kernel, pad, dil in ((3, 1, 1), (3, 2, 2), (1, 0, 1))
             for bias in (rand(16), None)]
    for kernel, padding, dilation, bias in cases:
        weight = rand(16, 16, kernel, kernel, scale=0.1)
        conv = ([1, 1], padding, dilation, 1)
        try:
            fused = _cudnn_op(x, weight, bias, z, *conv)
        except RuntimeError as err:
            return f'does not run: {str(err).splitlines()[0]}'
        ref = _portable(x, weight, bias, z, *conv)
        if fused.shape != ref.shape or fused.dtype != ref.dtype:
            return f'returns {fused.dtype} {tuple(fused.shape)}, not {ref.dtype} {tuple(ref.shape)}'
        err = ((fused.float() - ref.float()).abs().max() / (1 + ref.float().abs().max())).item()
        if not err <= _PROBE_TOL[dtype]:
            return f'differs from the portable path by {err:.2e} (relative)'
    return None


def probe_cudnn_fusion(device) -> dict:
    """Probe the cuDNN fused kernels on ``device``, once per device (a no-op
    elsewhere than CUDA): for each op, float32/float16/bfloat16 and
    contiguous / channels-last inputs, whether the fused op runs and agrees
    with the portable path; logs the result once. Returns {(op, dtype,
    channels_last): None (fused) or the reason for the portable path}."""
    device = torch.device(device)
    if device.type != 'cuda' or not torch.backends.cudnn.is_available():
        return {}
    if device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())
    if device in _PROBES:
        return _PROBES[device]
    found = {}
    for op in ('conv2d_relu', 'conv2d_add_relu'):
        for dtype in _PROBE_TOL:
            for channels_last in (False, True):
                why = _probe_one(op, device, dtype, channels_last)
                found[(op, dtype, channels_last)] = why
                _CUDNN_OK[(op, device, dtype, channels_last)] = why is None
    _PROBES[device] = found
    fused = [k for k, why in found.items() if why is None]
    lines = [f'mmgscnn conv+bias(+add)+ReLU on {device}: cuDNN fused kernel for '
             f'{len(fused)} of {len(found)} (op, dtype, layout) cases, the portable path '
             '(conv, add_, relu_) for the others']
    lines += [f'  portable: {op} {dtype} {"channels-last" if cl else "contiguous"}: {why}'
              for (op, dtype, cl), why in found.items() if why is not None]
    print_log('\n'.join(lines), logger='current')
    return found


def fused_path(x: Tensor, weight: Tensor, op: str = 'conv2d_relu') -> str:
    """Which path ``op`` takes for these inputs: 'cudnn' or 'portable'."""
    if x.device.type != 'cuda':
        return 'portable'
    return 'cudnn' if _cudnn_fused(op, x, weight, None, None) else 'portable'
