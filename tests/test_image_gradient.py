"""mmgscnn.models.shape_stream.image_gradient: Sobel and Canny maps on
hand-made images, independent of the data preprocessor's mean and std."""
import pytest
import torch
from mmengine.config import ConfigDict

from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import ImageGradient

from helpers import data_preprocessor, make_batch, random_images, tiny_model


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('method', ['sobel', 'canny'])
def test_image_gradient_constant_and_step(method):
    grad = ImageGradient(method)
    const = torch.full((1, 3, 16, 20), 97.0)
    # zero up to float rounding of the convolution
    torch.testing.assert_close(grad(const), torch.zeros(1, 1, 16, 20), atol=1e-6, rtol=0)
    step = torch.zeros(1, 3, 16, 20)
    step[..., 10:] = 200.0
    g = grad(step)[0, 0]
    assert g.shape == (16, 20)
    column_strength = g.sum(dim=0)
    peak = set(column_strength.topk(2).indices.tolist())
    assert peak & {9, 10}, f'peak at {peak}, step between columns 9 and 10'
    assert column_strength[:7].abs().max() < 1e-5 and column_strength[13:].abs().max() < 1e-5
    assert column_strength.max() > 1.0


def test_image_gradient_does_not_depend_on_mean_std():
    outs = []
    for mean, std in (([123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
                      ([0., 0., 0.], [1., 1., 1.]), ([10., 200., 50.], [3., 90., 7.])):
        cfg = tiny_model('fcn')
        cfg.data_preprocessor = ConfigDict(data_preprocessor(mean=mean, std=std))
        model = build(cfg)
        data = make_batch(model, 32, 40, seed=3)
        pixels = model.extract_feat(data['inputs']).image
        outs.append(model.decode_head.shape_stream.image_gradient(pixels))
        raw = torch.stack([d.float() for d in random_images(32, 40, seed=3)])
        torch.testing.assert_close(pixels, raw.flip(1), atol=1e-3, rtol=1e-5)  # bgr->rgb
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outs[0], outs[2], atol=1e-5, rtol=1e-4)


# ------------------------------------- pixels and their Sobel map in one buffer
# Expected values from the float64 numpy reference (tests/method_references.py):
# un-normalised by hand, grey level, Sobel / 4 with replicated frame, clamp at 1.

def _normalised_case(c, seed, affine='both'):
    """(x, scale, shift, pixels): a black/white/noise image and the model's
    input x with ``pixels = x * scale + shift`` (``affine``: 'both', 'scale',
    'shift' or 'none': which of the two is not the identity; float32
    values). Sobel magnitudes above 1 occur (the clamp acts)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    pixels = np.where(rng.random((2, 1, 7, 9)) < 0.5, 0.0, 255.0).repeat(c, axis=1)
    pixels[:, :, 3:] = rng.uniform(0, 255, (2, c, 4, 9))
    r, k = np.mgrid[:4, :6]
    pixels[0, :, :4, 3:] = 255.0 * (r + k >= 4)  # a diagonal step: |grad| = 1.06
    pixels[:, :, :, :2] = 30.0 * np.arange(c)[:, None, None]  # channels differ
    scale = rng.uniform(20, 80, c).astype(np.float32).astype(np.float64)
    shift = rng.uniform(90, 130, c).astype(np.float32).astype(np.float64)
    if affine in ('scale', 'none'):
        shift = np.zeros(c)
    if affine in ('shift', 'none'):
        scale = np.ones(c)
    x = (pixels - shift[:, None, None]) / scale[:, None, None]
    return x, scale, shift, x * scale[:, None, None] + shift[:, None, None]


def _buffer_reference(pixels):
    """(N, C, H, W) pixels -> (N, C + 2, H, W): pixels, Sobel magnitude of the
    grey level (clamped), its vertical derivative."""
    import numpy as np
    import method_references as ref
    out = []
    for img in pixels:
        gx, gy = ref.sobel(ref.gray(img))
        out.append(np.concatenate([img, ref.sobel_magnitude(img)[None], gy[None]]))
    return np.stack(out)


@pytest.mark.parametrize('c', [3, 2])
@pytest.mark.parametrize('affine', ['both', 'scale', 'shift', 'none'])
def test_pixels_and_sobel_values_against_the_reference(c, affine):
    import numpy as np
    import method_references as ref
    from mmgscnn.models.shape_stream.image_gradient import pixels_and_sobel
    x, scale, shift, pixels = _normalised_case(c, c, affine)
    # the scale and shift as float32 (as the data preprocessor keeps them),
    # in other shapes with C elements, or left out
    s = None if affine in ('shift', 'none') else torch.tensor(scale, dtype=torch.float32)
    b = None if affine in ('scale', 'none') else torch.tensor(shift).float().view(1, c, 1, 1)
    buf = pixels_and_sobel(torch.tensor(x), s, b)
    expected = _buffer_reference(pixels)
    assert buf.dtype == torch.float64 and buf.shape == (2, c + 2, 7, 9)
    np.testing.assert_allclose(buf.numpy(), expected, rtol=0, atol=1e-10)
    raw = np.hypot(*ref.sobel(ref.gray(pixels[0])))
    m = expected[:, c]
    assert raw.max() > 1.05 and m.max() == 1.0 and ((0 < m) & (m < 0.9)).mean() > 0.3


def test_pixels_and_sobel_channels_last_and_the_onnx_form(monkeypatch):
    """channels_last: the same values, written channels-last; under ONNX
    export the same values too, without hypot (ONNX has none), and
    :func:`sobel_magnitude` alike."""
    import numpy as np
    from mmgscnn.models.shape_stream.image_gradient import pixels_and_sobel, sobel_magnitude
    x, scale, shift, pixels = _normalised_case(3, seed=7)
    expected = _buffer_reference(pixels)
    args = torch.tensor(x), torch.tensor(scale), torch.tensor(shift)
    buf = pixels_and_sobel(*args, channels_last=True)
    assert buf.is_contiguous(memory_format=torch.channels_last) and not buf.is_contiguous()
    np.testing.assert_allclose(buf.numpy(), expected, rtol=0, atol=1e-10)
    assert pixels_and_sobel(*args).is_contiguous()
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)

    def no_hypot(*args):
        raise AssertionError('hypot called while exporting to ONNX')
    monkeypatch.setattr(torch, 'hypot', no_hypot)
    monkeypatch.setattr(torch.Tensor, 'hypot_', no_hypot)
    np.testing.assert_allclose(pixels_and_sobel(*args).numpy(), expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sobel_magnitude(torch.tensor(pixels)).numpy(),
                               expected[:, 3:4], rtol=0, atol=1e-12)


def test_pixels_and_sobel_passes_the_gradient_to_the_pixels_only():
    """x requiring grad: the same values; d(sum of the buffer)/dx = scale
    (the pixel channels x * scale + shift; the gradient map carries none);
    under no_grad nothing requires grad."""
    import numpy as np
    from mmgscnn.models.shape_stream.image_gradient import pixels_and_sobel
    x, scale, shift, pixels = _normalised_case(3, seed=8)
    expected = _buffer_reference(pixels)
    for s, b in ((scale, shift), (None, None)):
        xt = torch.tensor(x if s is not None else pixels).requires_grad_(True)
        args = (None, None) if s is None else (torch.tensor(s).float(), torch.tensor(b).float())
        buf = pixels_and_sobel(xt, *args)
        assert buf.dtype == torch.float64 and buf.requires_grad
        np.testing.assert_allclose(buf.detach().numpy(), expected, rtol=0, atol=1e-10)
        buf.sum().backward()
        grad = np.ones(x.shape) * (1.0 if s is None else s[:, None, None])
        np.testing.assert_allclose(xt.grad.numpy(), grad, rtol=1e-7, atol=0)
        with torch.no_grad():
            assert not pixels_and_sobel(xt, *args).requires_grad


@pytest.mark.parametrize('method', ['sobel', 'canny'])
def test_with_pixels_is_the_pixels_and_the_gradient_map(method):
    """ImageGradient.with_pixels: channels 0..C-1 the pixels x * scale +
    shift, channel C the method's map of them (Sobel: scratch after it;
    Canny, sigma 0: the reference's edges, nothing after them)."""
    import numpy as np
    import method_references as ref
    grad = ImageGradient(method, sigma=0.0)
    for affine in ('both', 'scale', 'shift', 'none'):
        x, scale, shift, pixels = _normalised_case(3, 9, affine)
        s = None if affine in ('shift', 'none') else torch.tensor(scale)
        b = None if affine in ('scale', 'none') else torch.tensor(shift)
        buf = grad.with_pixels(torch.tensor(x), s, b)
        if method == 'sobel':
            expected = _buffer_reference(pixels)
        else:
            edges = np.stack([ref.canny(img, 0.05, 0.15) for img in pixels])
            expected = np.concatenate([pixels, edges[:, None]], axis=1)
            assert 0 < edges.sum() < edges.size / 2
        assert buf.shape == expected.shape
        np.testing.assert_allclose(buf.numpy(), expected, rtol=0, atol=1e-10)
    args = torch.tensor(scale), torch.tensor(shift)
    buf = grad.with_pixels(torch.tensor(x), *args, channels_last=True)
    assert buf.is_contiguous(memory_format=torch.channels_last) == (method == 'sobel')
    assert grad.with_pixels(torch.tensor(x), *args).is_contiguous()  # default: contiguous


def test_pixels_and_gradient_buffer_has_the_input_dtype():
    """float32 input with float64 scale and shift: a float32 buffer (both
    methods, with and without grad); float16 input: a float16 buffer; under
    autocast, autocast's dtype (bfloat16 on the CPU). Values
    from the float64 reference, to the input precision."""
    import numpy as np
    import method_references as ref
    from mmgscnn.models.shape_stream.image_gradient import pixels_and_sobel
    x, scale, shift, pixels = _normalised_case(3, seed=10)
    args = torch.tensor(scale), torch.tensor(shift)
    expected = _buffer_reference(pixels)
    for requires_grad in (False, True):
        x32 = torch.tensor(x, dtype=torch.float32).requires_grad_(requires_grad)
        buf = pixels_and_sobel(x32, *args)
        assert buf.dtype == torch.float32
        np.testing.assert_allclose(buf.detach().numpy(), expected, rtol=1e-5, atol=1e-4)
    canny = ImageGradient('canny', sigma=0.0).with_pixels(torch.tensor(x).float(), *args)
    assert canny.dtype == torch.float32
    edges = np.stack([ref.canny(img, 0.05, 0.15) for img in pixels])
    np.testing.assert_array_equal(canny[:, 3].numpy(), edges)
    assert ImageGradient().with_pixels(torch.tensor(x).float(), *args).dtype == torch.float32
    whole = np.round(pixels)  # integers: exact in float16
    half = pixels_and_sobel(torch.tensor(whole, dtype=torch.float16))
    assert half.dtype == torch.float16
    np.testing.assert_allclose(half.float().numpy(), _buffer_reference(whole), rtol=0, atol=4e-3)
    # under autocast: the convolution's dtype, the pixel channels too when x needs grad
    for requires_grad in (False, True):
        x32 = torch.tensor(x, dtype=torch.float32).requires_grad_(requires_grad)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            buf = pixels_and_sobel(x32, *args)
        assert buf.dtype == torch.bfloat16
        np.testing.assert_allclose(buf[:, :3].detach().float().numpy(), pixels, rtol=0, atol=2.0)
        np.testing.assert_allclose(buf[:, 3:].detach().float().numpy(), expected[:, 3:],
                                   rtol=0, atol=2e-2)
