"""Image-gradient maps for the shape stream, computed on the image's device.

Input is the image batch in pixel units (N, C, H, W), 0..255, as the data
preprocessor received it (``GSCNNEncoderDecoder`` undoes the normalisation),
so the result does not depend on the configured mean and std. Output is one
channel (N, 1, H, W), roughly in [0, 1].
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..utils.constants import cached_constant

_TAN_22_5 = math.tan(math.pi / 8)


def _full_conv1d(a: Tensor, b: Tensor) -> Tensor:
    """Full 1-D convolution of two kernels (length len(a) + len(b) - 1)."""
    return F.conv1d(a.view(1, 1, -1), b.flip(0).view(1, 1, -1),
                     padding=b.numel() - 1).view(-1)


def sobel_kernels(sigma: float, device, dtype) -> tuple:
    """1-D kernels ``(smooth, derivative)`` of the Sobel operator divided by
    4 (``[1, 2, 1] / 4`` and ``[-1, 0, 1]``), each convolved with a Gaussian
    of std ``sigma`` pixels (radius ``ceil(2 sigma)``) when ``sigma > 0``.
    Built with device ops (no host-to-device copy), once per ``sigma``,
    device and dtype (:func:`~mmgscnn.models.utils.constants.cached_constant`:
    the callers must not modify them in place)."""
    def build():
        d = torch.arange(-1, 2, device=device, dtype=dtype)  # [-1, 0, 1]
        s = (2 - d.abs()) / 4                                 # [1, 2, 1] / 4
        if sigma > 0:
            r = max(1, math.ceil(2 * sigma))
            t = torch.arange(-r, r + 1, device=device, dtype=dtype)
            g = torch.exp(-t * t / (2 * sigma * sigma))
            g = g / g.sum()
            s, d = _full_conv1d(g, s), _full_conv1d(g, d)
        return s, d

    return cached_constant(('sobel_kernels', float(sigma), torch.device(device), dtype),
                           build)


def _sobel_pair(x: Tensor, s: Tensor, d: Tensor, scale: float = 1.0) -> Tensor:
    """``(gx, gy)`` of every channel of (N, C, H, W), interleaved as
    (N, 2C, H, W), times ``scale``: ``x`` padded once by replication, one
    depthwise pass along W with ``(d, s * scale)`` for each channel, one
    along H with ``(s * scale, d)``. ``scale`` stays on the smoothing taps:
    the derivative pass then sums exact opposites of equal inputs, so a
    constant image gives exactly zero in any summation order, fused
    multiply-adds included."""
    c, r = x.shape[1], s.numel() // 2
    along_w = torch.stack([d, s * scale]).repeat(c, 1).view(2 * c, 1, 1, -1)
    along_h = torch.stack([s * scale, d]).repeat(c, 1).view(2 * c, 1, -1, 1)
    x = F.pad(x, (r, r, r, r), mode='replicate')
    return F.conv2d(F.conv2d(x, along_w, groups=c), along_h, groups=2 * c)


def sobel(x: Tensor, sigma: float = 0.0) -> tuple:
    """Sobel derivatives of every channel of ``x`` (N, C, H, W), after an
    optional Gaussian smoothing of std ``sigma`` pixels.

    Separable depthwise convolutions with replicate padding, so a constant
    image (and the image frame) gives zero. Returns ``(gx, gy)``, each
    (N, C, H, W), divided by 4 so that a unit step has a derivative of 1
    across it (without smoothing).
    """
    s, d = sobel_kernels(sigma, x.device, x.dtype)
    out = _sobel_pair(x, s, d)
    return out[:, 0::2], out[:, 1::2]


def _gray(image: Tensor) -> Tensor:
    """Channel mean, scaled from 0..255 to 0..1: (N, 1, H, W)."""
    return image.mean(dim=1, keepdim=True) / 255.0


def sobel_magnitude(image: Tensor) -> Tensor:
    """Sobel gradient magnitude of the grey image, clamped to [0, 1].

    A black/white step edge gives 1. (N, C, H, W) pixel units -> (N, 1, H, W).
    The grey level's 1 / (C * 255) is applied by the last filter's weights.
    """
    s, d = sobel_kernels(0.0, image.device, image.dtype)
    g = _sobel_pair(image.sum(dim=1, keepdim=True), s, d, 1.0 / (255.0 * image.shape[1]))
    gx, gy = g[:, :1], g[:, 1:]
    if torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
        magnitude = torch.sqrt(gx * gx + gy * gy)  # ONNX has no hypot
    else:
        magnitude = torch.hypot(gx, gy)  # one pass
    return magnitude.clamp(max=1.0)


def pixels_and_sobel(x: Tensor, scale: Tensor = None, shift: Tensor = None,
                     channels_last: bool = False) -> Tensor:
    """The pixel image and its Sobel magnitude in one buffer, from the
    image as the model gets it (normalised or not), for the shape stream.

    Args:
        x: (N, C, H, W), with ``pixel = x * scale + shift`` per channel.
        scale, shift: (C, ) (any shape with C elements) or None: ``x`` is
            already in pixel units (0..255).
        channels_last: write the buffer channels-last (the convolution's
            weight is made channels-last, which cuDNN's output follows: no
            layout conversion of the buffer).

    Returns:
        (N, C + 2, H, W): channels ``0..C-1`` the pixel image, channel ``C``
        :func:`sobel_magnitude` of it (in [0, 1]), channel ``C + 1``
        scratch (the vertical derivative).

    One replicate padding, one dense 3x3 convolution and two in-place
    passes (hypot, clamp): the convolution's centre taps (times ``scale``,
    bias ``shift``) give the pixels, its Sobel taps the two derivatives of
    the grey level, with the grey level's ``1 / (C * 255)`` and ``scale``
    folded into the weights (``shift`` is constant, so no derivative sees
    it; replicate padding commutes with the per-channel affine map). Equal
    to undoing the normalisation, :func:`sobel_magnitude` and a
    concatenation up to rounding. Under autocast the buffer has the
    convolution's dtype. When ``x`` requires grad, the pixel channels carry
    it (the gradient map never does) and the buffer is made by a slower
    path; an input batch never requires grad in training.
    """
    n, c = x.shape[:2]
    if x.requires_grad and torch.is_grad_enabled():
        out = pixels_and_sobel(x.detach(), scale, shift, channels_last)
        pixels = x if scale is None else x * scale.reshape(1, c, 1, 1).to(x.dtype)
        pixels = pixels if shift is None else pixels + shift.reshape(1, c, 1, 1).to(x.dtype)
        return torch.cat([pixels.to(out.dtype), out[:, c:]], dim=1)
    device, dtype = x.device, x.dtype
    scale = (torch.ones(c, device=device, dtype=dtype) if scale is None
             else scale.reshape(c).to(dtype))
    shift = (torch.zeros(c, device=device, dtype=dtype) if shift is None
             else shift.reshape(c).to(dtype))
    s, d = sobel_kernels(0.0, device, dtype)
    centre = torch.outer(d == 0, d == 0).to(dtype)                    # (3, 3)
    identity = torch.diag(scale).view(c, c, 1, 1) * centre             # (C, C, 3, 3)
    derivative = torch.stack([torch.outer(s, d), torch.outer(d, s)])  # gx, gy taps
    derivative = derivative.unsqueeze(1) * (scale / (255.0 * c)).view(1, c, 1, 1)
    weight = torch.cat([identity, derivative])                         # (C + 2, C, 3, 3)
    if channels_last:
        weight = weight.contiguous(memory_format=torch.channels_last)
    bias = torch.cat([shift, shift.new_zeros(2)])
    with torch.no_grad():
        out = F.conv2d(F.pad(x.detach(), (1, 1, 1, 1), mode='replicate'), weight, bias)
        gx, gy = out[:, c:c + 1], out[:, c + 1:]
        if torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
            # ONNX has no hypot and no in-place writes into a slice
            magnitude = torch.sqrt(gx * gx + gy * gy).clamp(max=1.0)
            return torch.cat([out[:, :c], magnitude, gy], dim=1)
        gx.hypot_(gy).clamp_(max=1.0)
    return out


def canny_edges(image: Tensor, sigma: float = 1.4, low: float = 0.05,
                high: float = 0.15) -> Tensor:
    """A Canny-like binary edge map, fully on the device.

    Gaussian smoothing, Sobel gradient, non-maximum suppression along the
    gradient direction quantised to 0/45/90/135 degrees, and a double
    threshold where weak edges are kept when they touch a strong edge in
    their 3x3 neighbourhood (one step of hysteresis, no iterative tracing).
    Thresholds are on the gradient magnitude, in the units of
    :func:`sobel_magnitude` (a full black/white step is 1).

    Returns (N, 1, H, W) with values in {0, 1}.
    """
    gx, gy = sobel(_gray(image), sigma)
    mag = torch.sqrt(gx * gx + gy * gy)
    ax, ay = gx.abs(), gy.abs()
    p = F.pad(mag, (1, 1, 1, 1))  # zeros outside: frame pixels can be maxima

    def shifted(dy, dx):
        h, w = mag.shape[-2:]
        return p[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    horizontal = ay <= _TAN_22_5 * ax        # gradient along x: compare left/right
    vertical = ax <= _TAN_22_5 * ay          # gradient along y: compare up/down
    same_sign = (gx * gy) > 0                # diagonal direction
    n1 = torch.where(horizontal, shifted(0, -1),
                     torch.where(vertical, shifted(-1, 0),
                                 torch.where(same_sign, shifted(-1, -1), shifted(-1, 1))))
    n2 = torch.where(horizontal, shifted(0, 1),
                     torch.where(vertical, shifted(1, 0),
                                 torch.where(same_sign, shifted(1, 1), shifted(1, -1))))
    thin = (mag >= n1) & (mag >= n2) & (mag > 0)
    strong = thin & (mag >= high)
    weak = thin & (mag >= low)
    near_strong = F.max_pool2d(strong.to(mag.dtype), 3, 1, 1) > 0
    return (strong | (weak & near_strong)).to(image.dtype)


class ImageGradient(nn.Module):
    """Image-gradient map fed to the shape stream.

    Args:
        method: ``'sobel'`` (default) or ``'canny'``. Sobel is the default: a
            single small convolution, a continuous edge strength that the
            shape stream's fusion convolution can weight, and no thresholds to
            tune per dataset. ``'canny'`` gives the thin binary edges of the
            paper's Canny input, computed on the device.
        sigma, low, high: Canny parameters (see :func:`canny_edges`).

    Forward: image (N, C, H, W) in pixel units 0..255 -> (N, 1, H, W).
    """

    METHODS = ('sobel', 'canny')

    def __init__(self, method: str = 'sobel', sigma: float = 1.4,
                 low: float = 0.05, high: float = 0.15):
        super().__init__()
        if method not in self.METHODS:
            raise ValueError(f'shape_stream.image_gradient.method must be one of '
                             f'{self.METHODS}, got {method!r}')
        self.method = method
        self.sigma, self.low, self.high = sigma, low, high

    @property
    def footprint(self) -> int:
        """Half-width in pixels of the window that decides one output pixel
        (so how far an edge outside the image, e.g. a padding border, reaches)."""
        if self.method == 'sobel':
            return 1
        # Gaussian and Sobel, then non-maximum suppression and hysteresis (1 px each)
        return 1 + (max(1, math.ceil(2 * self.sigma)) if self.sigma > 0 else 0) + 2

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        if self.method == 'sobel':
            return sobel_magnitude(image)
        return canny_edges(image, self.sigma, self.low, self.high)

    def with_pixels(self, x: Tensor, scale: Tensor = None, shift: Tensor = None,
                    channels_last: bool = False) -> Tensor:
        """The pixel image ``x * scale + shift`` (per channel; None: ``x`` is
        in pixels) and its gradient map in one buffer: (N, C, H, W) ->
        (N, C + 1 + k, H, W), the gradient map in channel ``C`` and ``k``
        scratch channels after it (Sobel: :func:`pixels_and_sobel`, k = 1,
        written channels-last if ``channels_last``; Canny: k = 0)."""
        if self.method == 'sobel':
            return pixels_and_sobel(x, scale, shift, channels_last)
        c = x.shape[1]
        if scale is not None:
            x = x * scale.reshape(1, c, 1, 1).to(x.dtype)
        if shift is not None:
            x = x + shift.reshape(1, c, 1, 1).to(x.dtype)
        return torch.cat([x, self(x)], dim=1)

    def extra_repr(self) -> str:
        return f'method={self.method!r}'
