"""Frozen copy of the shape stream's layers as they were before the issue-21
rewrites of the enlargement and the concatenations (commit 5350581): the oracle
the rewritten code is checked against in
``test_stream_rewrites_equivalence.py``. Test-only; not imported by the
package. Functions over the modules' parameters, so that a later change to
``mmgscnn`` cannot change the oracle."""
import torch
import torch.nn.functional as F
from torch import Tensor


# ---------------------------------------------- enlargement by blends (CUDA path)
def _phase_offsets(s: int) -> list:
    return [(j + 0.5) / s - 0.5 for j in range(s)]


def _enlarge_axis(x: Tensor, s: int, dim: int) -> Tensor:
    if s == 1:
        return x
    n = x.shape[dim]
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    prev = torch.cat([first, x.narrow(dim, 0, n - 1)], dim=dim) if n > 1 else x
    nxt = torch.cat([x.narrow(dim, 1, n - 1), last], dim=dim) if n > 1 else x
    phases = [torch.lerp(x, prev, -d) if d < 0 else torch.lerp(x, nxt, d)
              for d in _phase_offsets(s)]
    out = torch.stack(phases, dim=dim + 1)
    shape = list(x.shape)
    shape[dim] = n * s
    return out.reshape(shape)


def enlarge_bilinear(x: Tensor, s_h: int, s_w: int) -> Tensor:
    if x.dim() == 4 and x.shape[1] > 1 and not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last):
        nhwc = x.permute(0, 2, 3, 1)
        return _enlarge_axis(_enlarge_axis(nhwc, s_h, 1), s_w, 2).permute(0, 3, 1, 2)
    return _enlarge_axis(_enlarge_axis(x, s_h, x.dim() - 2), s_w, x.dim() - 1)


def upsample_bilinear(x: Tensor, size, align_corners: bool = False, cuda_path: bool = True):
    h, w = x.shape[-2:]
    H, W = int(size[0]), int(size[1])
    if (H, W) == (h, w):
        return x
    if not cuda_path or align_corners or H % h or W % w or H < h or W < w:
        return F.interpolate(x, size=(H, W), mode='bilinear', align_corners=align_corners)
    return enlarge_bilinear(x, H // h, W // w)


# ------------------------------------------------------------------- the GCL
def gated_spatial_conv(gcl, x: Tensor, gate: Tensor) -> Tensor:
    """GatedSpatialConv.forward: conv(x * (1 + sigmoid(attention(cat(x, gate)))))."""
    alpha = gcl.attention(torch.cat([x, gate], dim=1))
    return gcl.conv(torch.addcmul(x, x, alpha))


# ---------------------------------------------------------- the image gradient
def _filter(x: Tensor, kernel: Tensor, dim: int) -> Tensor:
    c, r = x.shape[1], kernel.numel() // 2
    if dim == 3:
        pad, view = (r, r, 0, 0), (1, 1, 1, -1)
    else:
        pad, view = (0, 0, r, r), (1, 1, -1, 1)
    weight = kernel.view(view).expand(c, -1, -1, -1)
    return F.conv2d(F.pad(x, pad, mode='replicate'), weight, groups=c)


def sobel(x: Tensor, s: Tensor, d: Tensor) -> tuple:
    """Separable Sobel derivatives (gx, gy) of every channel, 1-D kernels
    ``s`` (smoothing) and ``d`` (derivative), replicate padding."""
    return _filter(_filter(x, d, 3), s, 2), _filter(_filter(x, s, 3), d, 2)


def sobel_kernels(like: Tensor) -> tuple:
    """Sobel's ``[1, 2, 1] / 4`` and ``[-1, 0, 1]``, no smoothing."""
    d = torch.tensor([-1.0, 0.0, 1.0], dtype=like.dtype, device=like.device)
    return (2 - d.abs()) / 4, d


def sobel_magnitude(image: Tensor, s: Tensor, d: Tensor) -> Tensor:
    gx, gy = sobel(image.mean(dim=1, keepdim=True) / 255.0, s, d)
    return torch.sqrt(gx * gx + gy * gy).clamp(max=1.0)


# ------------------------------------------------------------ the shape stream
def image_inputs(stream, image: Tensor, size, image_valid=None) -> tuple:
    from mmseg.models.utils import resize
    if tuple(image.shape[-2:]) != tuple(size):
        image = resize(image, size=size, mode='area')
        if image_valid is not None:
            image_valid = resize(image_valid.to(image.dtype), size=size, mode='area') >= 1
    if stream.image_gradient.method == 'sobel':
        with torch.no_grad():  # as ImageGradient.forward
            grad = sobel_magnitude(image, *sobel_kernels(image))
    else:
        grad = stream.image_gradient(image)
    if image_valid is not None:
        r = stream.image_gradient.footprint
        padding = (~image_valid).to(grad.dtype)
        grad = grad * (F.max_pool2d(padding, 2 * r + 1, 1, r) == 0)
    return image / 255.0, grad


def shape_stream(stream, feats, image: Tensor, image_valid=None, cuda_path: bool = True):
    """ShapeStream.forward with the stream's modules; ``cuda_path``: the
    channels-last layout and the enlargement by blends, as on CUDA."""
    def layout(t):
        return t.contiguous(memory_format=torch.channels_last) if cuda_path else t

    def enlarge(t, size):
        return layout(upsample_bilinear(t, size, stream.align_corners, cuda_path))

    h, w = image.shape[-2:]
    s = stream.stride
    size = ((h + s - 1) // s, (w + s - 1) // s)
    x = layout(stream.input_conv(feats[stream.in_index]))
    if not stream.first_block_low_res:
        x = enlarge(x, size)
    pixels, grad = image_inputs(stream, image, size, image_valid)
    stem = None
    if stream.stem is not None:
        stem = stream.stem(layout(torch.cat([pixels, grad], dim=1).to(x.dtype)))
    for i, level in enumerate(stream.gate_indices):
        x = stream.blocks[i](x)
        x = stream.reduces[i](x)
        if tuple(x.shape[-2:]) != tuple(size):
            x = enlarge(x, size)
        if i == 0 and stem is not None:
            x = torch.cat([x, stem], dim=1)
        gate = enlarge(stream.gate_convs[i](feats[level]), size)
        x = gated_spatial_conv(stream.gates[i], x, gate)
    logits = stream.classifier(x)
    fused = torch.sigmoid(stream.fuse(torch.cat([torch.sigmoid(logits),
                                                 grad.to(logits.dtype)], 1)))
    return logits, fused
