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

# Sobel: a unit step gives a response of 4 in the direction across it.
_SOBEL_X = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
_SOBEL_SCALE = 4.0
_TAN_22_5 = math.tan(math.pi / 8)


def sobel(x: Tensor) -> tuple:
    """Sobel derivatives of every channel of ``x`` (N, C, H, W).

    Replicate padding, so a constant image (and the image frame) gives zero.
    Returns ``(gx, gy)``, each (N, C, H, W), divided by 4 so that a unit step
    has a derivative of 1 across it.
    """
    n, c, h, w = x.shape
    kx = _SOBEL_X.to(device=x.device, dtype=x.dtype)
    weight = torch.stack([kx, kx.t()]).unsqueeze(1) / _SOBEL_SCALE  # (2,1,3,3)
    g = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode='replicate'), weight)
    g = g.reshape(n, c, 2, h, w)
    return g[:, :, 0], g[:, :, 1]


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian smoothing of every channel, replicate padding."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode='replicate'), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode='replicate'), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def _gray(image: Tensor) -> Tensor:
    """Channel mean, scaled from 0..255 to 0..1: (N, 1, H, W)."""
    return image.mean(dim=1, keepdim=True) / 255.0


def sobel_magnitude(image: Tensor) -> Tensor:
    """Sobel gradient magnitude of the grey image, clamped to [0, 1].

    A black/white step edge gives 1. (N, C, H, W) pixel units -> (N, 1, H, W).
    """
    gx, gy = sobel(_gray(image))
    return torch.sqrt(gx * gx + gy * gy).clamp(max=1.0)


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
    gx, gy = sobel(gaussian_blur(_gray(image), sigma))
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

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        if self.method == 'sobel':
            return sobel_magnitude(image)
        return canny_edges(image, self.sigma, self.low, self.high)

    def extra_repr(self) -> str:
        return f'method={self.method!r}'
