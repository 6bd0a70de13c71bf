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

_TAN_22_5 = math.tan(math.pi / 8)


def _full_conv1d(a: Tensor, b: Tensor) -> Tensor:
    """Full 1-D convolution of two kernels (length len(a) + len(b) - 1)."""
    return F.conv1d(a.view(1, 1, -1), b.flip(0).view(1, 1, -1),
                     padding=b.numel() - 1).view(-1)


def sobel_kernels(sigma: float, device, dtype) -> tuple:
    """1-D kernels ``(smooth, derivative)`` of the Sobel operator divided by
    4 (``[1, 2, 1] / 4`` and ``[-1, 0, 1]``), each convolved with a Gaussian
    of std ``sigma`` pixels (radius ``ceil(2 sigma)``) when ``sigma > 0``.
    Built with device ops, so no host-to-device copy."""
    d = torch.arange(-1, 2, device=device, dtype=dtype)  # [-1, 0, 1]
    s = (2 - d.abs()) / 4                                 # [1, 2, 1] / 4
    if sigma > 0:
        r = max(1, math.ceil(2 * sigma))
        t = torch.arange(-r, r + 1, device=device, dtype=dtype)
        g = torch.exp(-t * t / (2 * sigma * sigma))
        g = g / g.sum()
        s, d = _full_conv1d(g, s), _full_conv1d(g, d)
    return s, d


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

    def extra_repr(self) -> str:
        return f'method={self.method!r}'
