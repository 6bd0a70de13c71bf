"""Dual-task loss of Gated-SCNN: boundaries of the predicted segmentation
against boundaries of the ground truth."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from ..shape_stream.image_gradient import sobel_kernels
from ..utils import upsample_bilinear
from ..utils.constants import cached_constant
from .utils import as_two_class, check_upcast, compute_dtype

#: A per-class boundary magnitude above this is "on a boundary" (a hard edge
#: gives magnitudes of 0.05 and more throughout the smoothing footprint;
#: flat regions give 0 up to rounding).
_ON_BOUNDARY = 1e-3
#: The magnitude is sqrt(gx^2 + gy^2 + _EPS^2): finite gradient where flat.
_EPS = 1e-6
#: Weight of the ignored-pixel counter: far above any magnitude (<= 2).
_BIG = 1e6


def gumbel_logits(logits: Tensor, tau: float, eps: float = 1e-6) -> Tensor:
    """``(logits + g) / tau`` with Gumbel noise ``g = -log(-log(u))``, the
    uniform ``u`` (``torch.rand_like(logits)``, the same random stream as
    before) clamped to [eps, 1 - eps], safe from log(0). Four passes:
    ``-log(u)`` and ``log(.) / (1 - tau)`` as ``xlogy``, then one ``lerp``."""
    e = torch.rand_like(logits).clamp_(eps, 1.0 - eps)
    e = torch.xlogy(-1.0, e, out=e)                          # -log(u) > 0
    if tau == 1:
        return logits - e.log_()
    # lerp(a, x, 1/tau) = a (1 - 1/tau) + x / tau = (x - log e) / tau
    # for a = log(e) / (1 - tau).
    a = torch.xlogy(1.0 / (1.0 - tau), e, out=e)
    return torch.lerp(a, logits, 1.0 / tau, out=a)


def gumbel_softmax(logits: Tensor, tau: float, dim: int = 1, eps: float = 1e-6) -> Tensor:
    """Soft Gumbel-softmax sample ``softmax((logits + g) / tau)``."""
    return F.softmax(gumbel_logits(logits, tau, eps), dim=dim)


def _filter_bank(sobel_channels: int, sigma: float, device, dtype) -> tuple:
    """Depthwise 2-D filters, three outputs per input channel.

    The first ``sobel_channels`` channels give (gx, gy, eps): the Sobel
    derivatives divided by 4 after Gaussian smoothing (``sobel_kernels``,
    as outer products ``s (x) d`` and ``d (x) s``) and a constant ``_EPS``
    (bias), so that the norm over the three is ``sqrt(gx^2 + gy^2 + eps^2)``.
    One more channel (an ignored-pixel indicator) gives
    ``_ON_BOUNDARY + _BIG * (ignored pixels in the window)``: the threshold
    of "on a boundary", out of reach near ignored pixels.

    Returns weight (3 (c + 1), 1, K, K), bias (3 (c + 1),), radius K // 2;
    built once per arguments (:func:`cached_constant`: not to be modified).
    """
    def build():
        s, d = sobel_kernels(sigma, device, dtype)
        k = s.numel()
        c = sobel_channels
        sobel = torch.stack([torch.outer(s, d), torch.outer(d, s), torch.zeros_like(
            torch.outer(s, s))])                                      # (3, K, K)
        gate = torch.stack([torch.full((k, k), _BIG, device=device, dtype=dtype),
                            torch.zeros(k, k, device=device, dtype=dtype),
                            torch.zeros(k, k, device=device, dtype=dtype)])
        weight = torch.cat([sobel.repeat(c, 1, 1), gate]).unsqueeze(1)
        bias = torch.zeros(3 * (c + 1), device=device, dtype=dtype)  # no host copy
        bias[2:3 * c:3] = _EPS
        bias[3 * c] = _ON_BOUNDARY
        return weight, bias, k // 2

    return cached_constant(('dual_task_filter_bank', sobel_channels, float(sigma),
                            torch.device(device), dtype), build)


def _cuda_paths(x: Tensor) -> bool:
    """Whether the filters run as depthwise convolutions with several
    outputs per channel and the norm as one ``vector_norm`` (on CUDA: the
    fewest passes). Elsewhere the channels are repeated for one output
    each and the norm is two ``hypot`` passes: the CPU's convolutions with
    several outputs per channel and its ``vector_norm`` over a middle
    dimension are 5-30x slower. Same values either way."""
    return x.device.type == 'cuda'


def _magnitude(g: Tensor) -> Tensor:
    """(N, M, 3, H, W) (gx, gy, eps) -> (N, M, H, W) Euclidean norm."""
    if _cuda_paths(g):
        return torch.linalg.vector_norm(g, dim=2)
    return torch.hypot(torch.hypot(g[:, :, 0], g[:, :, 1]), g[:, :, 2])


def _replicate_conv(x: Tensor, weight: Tensor, bias: Tensor, r: int) -> Tensor:
    """Depthwise ``conv2d`` of (N, C, H, W) with replicate padding ``r``
    and ``weight.shape[0] // C`` outputs per channel: one zero-padded
    full-resolution pass, then the bands of width ``r`` along the frame
    recomputed from replicate-padded strips (small)."""
    n, c, h, w = x.shape
    groups = c
    if not _cuda_paths(x):
        groups = weight.shape[0]
        x = x.repeat_interleave(groups // c, dim=1)
    if h <= 4 * r or w <= 4 * r:  # tiny maps: pad the whole map
        return F.conv2d(F.pad(x, (r, r, r, r), mode='replicate'), weight, bias,
                        groups=groups)
    out = F.conv2d(x, weight, bias, padding=r, groups=groups)
    pad = dict(mode='replicate')
    out[..., :r, :] = F.conv2d(F.pad(x[..., :2 * r, :], (r, r, r, 0), **pad), weight,
                               bias, groups=groups)
    out[..., h - r:, :] = F.conv2d(F.pad(x[..., h - 2 * r:, :], (r, r, 0, r), **pad),
                                   weight, bias, groups=groups)
    out[..., :, :r] = F.conv2d(F.pad(x[..., :2 * r], (r, 0, r, r), **pad), weight, bias,
                               groups=groups)
    out[..., :, w - r:] = F.conv2d(F.pad(x[..., w - 2 * r:], (0, r, r, r), **pad), weight,
                                   bias, groups=groups)
    return out


def _replicate_conv_adjoint(grad: Tensor, weight: Tensor, r: int, groups: int) -> Tensor:
    """Adjoint of :func:`_replicate_conv` (without bias) w.r.t. its input:
    one transposed convolution, then the gradient of the padding folded
    onto the frame (small strips). (N, groups * m, H, W) -> (N, groups,
    H, W), a view."""
    if _cuda_paths(grad):
        g = F.conv_transpose2d(grad, weight, groups=groups)  # (N, groups, H + 2r, W + 2r)
    else:
        g = F.conv_transpose2d(grad, weight, groups=grad.shape[1])
        g = g.view(g.shape[0], groups, -1, *g.shape[-2:]).sum(dim=2)
    h, w = g.shape[-2] - 2 * r, g.shape[-1] - 2 * r
    g[..., r:r + 1] += g[..., :r].sum(-1, keepdim=True)
    g[..., r + w - 1:r + w] += g[..., r + w:].sum(-1, keepdim=True)
    g[..., r:r + 1, :] += g[..., :r, :].sum(-2, keepdim=True)
    g[..., r + h - 1:r + h, :] += g[..., r + h:, :].sum(-2, keepdim=True)
    return g[..., r:r + h, r:r + w]


def boundary_magnitude(maps: Tensor, sigma: float) -> Tensor:
    """Per-channel boundary map ``|grad(G * m)|`` of (N, C, H, W) maps:
    Gaussian (std ``sigma`` px, 0 = none) and Sobel divided by 4, so a hard
    unit step gives 1 right at the step without smoothing. Replicate
    padding: the image frame is no boundary. ``sqrt(gx^2 + gy^2 + 1e-12)``,
    differentiable."""
    n, c, h, w = maps.shape
    weight, bias, r = _filter_bank(c, sigma, maps.device, maps.dtype)
    g = _replicate_conv(maps, weight[:3 * c], bias[:3 * c], r)
    return _magnitude(g.view(n, c, 3, h, w))


class _DualTask(torch.autograd.Function):
    """The loss value and, in the same pass, its gradient w.r.t. the logits.

    The loss is a scalar, so its gradient is computed once in the forward
    pass (from the tensors that are live there anyway) and kept in the
    logits' dtype; the backward pass only scales it by the incoming
    gradient. Nothing else at full resolution is kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, logits, seg_label, weight, ignore_index, tau, sigma, need_grad, upcast):
        dtype = compute_dtype(logits)
        n, c, h, w = logits.shape
        x = logits.to(dtype) if upcast is None else upcast
        y = gumbel_logits(x, tau)
        soft = F.softmax(y, dim=1)
        del y
        classes = torch.arange(c + 1, device=x.device).view(1, c + 1, 1, 1)
        label = seg_label.unsqueeze(1)
        pred_hot = x.argmax(dim=1, keepdim=True) == classes[:, :c]
        # class c of the label stands for ignore_index: the ignored pixels
        gt_hot = label == torch.where(classes == c, ignore_index, classes)
        # channels: soft sample (c), argmax one-hot (c), label one-hot (c),
        # ignored (1); promotion of the bool maps in the concatenation
        maps = torch.cat([soft, pred_hot, gt_hot], dim=1)
        del pred_hot, gt_hot
        bank, bias, r = _filter_bank(3 * c, sigma, x.device, dtype)
        g = _replicate_conv(maps, bank, bias, r).view(n, 3 * c + 1, 3, h, w)
        del maps
        zeta = _magnitude(g)                                      # (N, 3c + 1, H, W)
        # on a boundary of the prediction (pred) and of the truth (gt), and
        # not near an ignored pixel (the threshold channel is huge there)
        on = zeta[:, c:3 * c] > g[:, 3 * c, 0].unsqueeze(1)     # (N, 2c, H, W)
        if weight is not None:
            on = on * weight.to(dtype).view(n, 1, h, w)
            either = torch.maximum(on[:, :c], on[:, c:])
        else:
            either = on[:, :c] | on[:, c:]
        norm = on.view(n, 2, c, h, w).sum(dim=(0, 2, 3, 4)).amax().clamp(min=1).to(dtype)
        diff = zeta[:, :c] - zeta[:, 2 * c:3 * c]
        if need_grad and weight is not None:
            sign = torch.sign(diff).mul_(either)
        diff = diff.mul_(either)
        loss = torch.linalg.vector_norm(diff, 1) / norm
        if not need_grad:
            return loss
        if weight is None:
            sign = diff.sign_()
        # d loss / d (gx, gy) = sign * (gx, gy) / zeta / norm, then the
        # adjoint filter and the softmax's Jacobian (its input is y / tau)
        coef = sign.div_(zeta[:, :c]).unsqueeze(2)
        del zeta
        dg = (g[:, :c, :2] * coef).view(n, 2 * c, h, w)
        del g, coef
        scale = 1.0 / (norm * tau)
        adjoint = bank[:3 * c].view(c, 3, *bank.shape[1:])[:, :2].reshape(2 * c, 1,
                                                                          *bank.shape[2:])
        dsoft = _replicate_conv_adjoint(dg, adjoint * scale, r, c)
        grad = torch._softmax_backward_data(dsoft, soft, 1, dtype)
        ctx.save_for_backward(grad.to(logits.dtype))
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad, = ctx.saved_tensors
        return grad * grad_loss.to(grad.dtype), None, None, None, None, None, None, None


@MODELS.register_module()
class DualTaskLoss(nn.Module):
    """Consistency between segmentation boundaries and ground-truth boundaries.

    For every class k, ``zeta_k = |grad(G * s_k)|`` is the boundary map of
    the class-k channel ``s_k`` of a segmentation (:func:`boundary_magnitude`).
    For the prediction ``s`` is a Gumbel-softmax sample of the logits at
    temperature ``tau`` (a differentiable stand-in for the argmax); for the
    ground truth it is the one-hot label map, giving ``zeta_hat_k``.

    The paper sums ``|zeta - zeta_hat|`` over ``p+``, the pixels where either
    map is non-zero. Here an element (pixel p, class k) is in ``p+`` when
    class k has a boundary within the smoothing footprint of p in the ground
    truth or in the prediction's argmax map (non-zero ``zeta_hat_k(p)``, or
    non-zero boundary map of the argmax one-hot): only the classes that meet
    at a boundary count, so the noise of uninvolved classes adds nothing.
    The sum is divided by ``max(|p+ of the ground truth|, |p+ of the
    prediction|)``: a scale-free loss, whose denominator does not change
    when a boundary of the right length moves, so the loss grows while the
    predicted boundary moves away from the true one.

    Pixels whose footprint reaches an ignored pixel are left out (ignored
    regions create no boundary and get no gradient). Computed in float32
    (float64 inputs stay float64) even under autocast; empty ``p+`` gives 0.
    Heads with one output channel (binary, sigmoid) are read as two-class
    logits ``(0, x)``.

    Cost: one custom autograd function. The sample, the one-hot maps of the
    argmax and of the label and an ignored-pixel indicator are filtered
    together by one depthwise 2-D convolution (replicate padding: one
    full-resolution pass, the frame's bands recomputed from small strips);
    the masks, the loss and its gradient follow in about 20 more
    full-resolution passes (24 in all on CUDA, forward and backward; the
    CPU takes two more, see :func:`_cuda_paths`); the gradient w.r.t. the
    logits is made in the forward pass and is the only full-resolution
    tensor kept for backward (in the logits' dtype). No host-device
    synchronisation.

    Works as a ``loss_decode`` entry of any decode head (mmseg's call
    convention: ``loss(seg_logits, seg_label, weight=None, ignore_index=255)``;
    logits at another resolution than the label are enlarged bilinearly).

    Args:
        tau: Gumbel-softmax temperature (0.5, as in the official code; the
            paper gives no value). Lower is closer to the argmax.
        sigma: std of the Gaussian smoothing in pixels; 0 disables it.
        loss_weight: factor on the loss (paper: 1).
        loss_name: key in the loss dict, must start with ``loss_``.

    Forward: seg_logits (N, C, h, w), seg_label (N, H, W) -> scalar;
    optional ``weight`` (N, H, W) per-pixel weights, ``ignore_index``, and
    ``upcast_logits``: the same logits already in float32 (N, C, H, W at the
    label size, e.g. shared with the attention loss under AMP), used instead
    of a new float32 copy; the gradient still goes to ``seg_logits``.
    """

    def __init__(self, tau: float = 0.5, sigma: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_dual_task'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_', got {loss_name!r}")
        if tau <= 0:
            raise ValueError(f'DualTaskLoss tau must be > 0, got {tau}')
        if sigma < 0:
            raise ValueError(f'DualTaskLoss sigma must be >= 0 pixels, got {sigma}')
        self.tau = tau
        self.sigma = sigma
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def footprint(self) -> int:
        """Half-width in pixels of the window that decides one pixel's magnitude."""
        return 1 + (max(1, math.ceil(2 * self.sigma)) if self.sigma > 0 else 0)

    def forward(self, seg_logits: Tensor, seg_label: Tensor, weight: Tensor = None,
                ignore_index: int = 255, upcast_logits: Tensor = None,
                **kwargs) -> Tensor:
        if seg_logits.dim() != 4 or seg_label.dim() != 3:
            raise ValueError(f'DualTaskLoss expects seg_logits (N, C, H, W) and seg_label '
                             f'(N, H, W), got {tuple(seg_logits.shape)} and '
                             f'{tuple(seg_label.shape)}')
        check_upcast('DualTaskLoss', seg_logits, seg_label, upcast_logits)
        with torch.autocast(device_type=seg_logits.device.type, enabled=False):
            logits = as_two_class(seg_logits)
            if upcast_logits is not None:
                upcast_logits = as_two_class(upcast_logits.detach())
            if logits.shape[-2:] != seg_label.shape[-2:]:
                logits = upsample_bilinear(logits, seg_label.shape[-2:])
            need_grad = torch.is_grad_enabled() and logits.requires_grad
            loss = _DualTask.apply(logits, seg_label, weight, ignore_index, self.tau,
                                   self.sigma, need_grad, upcast_logits)
            return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name
