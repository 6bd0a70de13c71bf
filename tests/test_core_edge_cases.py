"""Edge cases and settings of the core modules that the formula tests do not
reach, each found by mutation testing (docs/testing.md): thresholds at 0 and
1, exact ties, defaults, layer configs, one-pixel normalisers, output dtypes
and the errors' messages. Values against hand-made cases or the float64
references of ``method_references``."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from mmgscnn.models.losses import BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss
from mmgscnn.models.losses.dual_task_loss import gumbel_logits, gumbel_softmax
from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import (ASPPBoundaryFusion, ClassifierBoundaryFusion,
                                         GatedSpatialConv, boundary_target)
from mmgscnn.models.shape_stream.boundary_targets import boundary_mask, label_boundaries
from mmgscnn.models.shape_stream.image_gradient import (ImageGradient, canny_edges, sobel,
                                                        sobel_kernels)

import method_references as ref
from helpers import TINY_CLASSES, tiny_decoder

IGN = 255


def random_labels(seed, shape=(2, 9, 11), classes=3, ignored=0.1):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, classes, shape)
    lab[rng.random(shape) < ignored] = IGN
    return lab


# ---------------------------------------------------------------------- the GCL
@pytest.mark.parametrize('kernel_size', [5])
def test_gcl_wide_kernel_keeps_the_size(kernel_size):
    gcl = GatedSpatialConv(3, 2, kernel_size).eval()
    x, gate = torch.randn(1, 3, 7, 9), torch.randn(1, 1, 7, 9)
    assert gcl(x, gate).shape == (1, 2, 7, 9)
    with pytest.raises(ValueError, match='kernel_size must be odd, got 4'):
        GatedSpatialConv(3, 2, 4)


def test_gcl_layer_configs_reach_every_layer():
    """conv_cfg reaches the three convolutions, act_cfg the attention's
    hidden layer (another activation, another alpha), init_cfg is used."""
    gcl = GatedSpatialConv(3, 2, 3, conv_cfg=dict(type='Conv2dAdaptivePadding'))
    convs = [m for m in gcl.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(type(m).__name__ == 'Conv2dAdaptivePadding' for m in convs)
    torch.manual_seed(0)
    relu = GatedSpatialConv(3, 2).eval()
    torch.manual_seed(0)
    tanh = GatedSpatialConv(3, 2, act_cfg=dict(type='Tanh')).eval()
    x, gate = torch.randn(1, 3, 4, 5), torch.randn(1, 1, 4, 5)
    assert (relu(x, gate) - tanh(x, gate)).abs().max() > 1e-4
    const = GatedSpatialConv(3, 2, init_cfg=dict(type='Constant', val=0.5, layer='Conv2d'))
    const.init_weights()
    assert torch.all(const.conv.weight == 0.5)


@pytest.mark.parametrize('gate_shape', [(1, 1, 5, 6), (2, 1, 4, 6), (2, 1, 5, 5)])
def test_gcl_gate_of_another_size_is_refused(gate_shape):
    with pytest.raises(ValueError, match=r'gate must be \(N, 1, H, W\) matching x'):
        GatedSpatialConv(3, 2)(torch.randn(2, 3, 5, 6), torch.randn(*gate_shape))


# ------------------------------------------------------------ boundary targets
def test_boundary_mask_equals_the_reference():
    """Boundary pixels among the labelled ones; near an ignored pixel they
    stay (only the boundary BCE leaves those out)."""
    for radius in (1, 2):
        lab = random_labels(radius)
        got = boundary_mask(torch.as_tensor(lab), IGN, radius)
        assert got.dtype == torch.bool and got.shape == (2, 1, 9, 11)
        for i in range(2):
            expected = ref.label_boundaries(lab[i], IGN, radius)
            np.testing.assert_array_equal(got[i, 0].numpy(), expected)
    lab = random_labels(3)  # defaults: ignore_index 255, radius 1
    np.testing.assert_array_equal(boundary_mask(torch.as_tensor(lab))[0, 0].numpy(),
                                  ref.label_boundaries(lab[0], IGN, 1))


def test_boundary_targets_defaults_dtypes_and_edge_map():
    lab = torch.as_tensor(random_labels(4))
    target, valid = boundary_target(lab)  # defaults: ignore_index 255, radius 1
    rt, rv = ref.boundary_target(lab[0].numpy(), IGN, 1)
    np.testing.assert_array_equal(target[0, 0].numpy(), rt)
    np.testing.assert_array_equal(valid[0, 0].numpy(), rv)
    assert target.dtype == torch.float32 and valid.dtype == torch.bool
    boundary, labelled = label_boundaries(lab)
    assert boundary.dtype == torch.float32
    np.testing.assert_array_equal(boundary[0, 0].numpy(),
                                  ref.label_boundaries(lab[0].numpy(), IGN, 1))
    np.testing.assert_array_equal(labelled[0, 0].numpy(), lab[0].numpy() != IGN)
    # a given edge map replaces the label boundaries, masked the same way
    edge = torch.rand(2, 1, 9, 11) > 0.5
    target, valid = boundary_target(lab, IGN, 1, edge_map=edge)
    assert target.dtype == torch.float32
    torch.testing.assert_close(target, (edge & valid).float())


def test_boundary_target_errors_name_the_problem():
    with pytest.raises(ValueError, match=r'seg_label must be \(N, H, W\), got \(9, 11\)'):
        boundary_target(torch.zeros(9, 11, dtype=torch.long))
    with pytest.raises(ValueError, match='radius must be >= 1 pixel, got 0'):
        boundary_target(torch.zeros(1, 9, 11, dtype=torch.long), IGN, 0)


# ------------------------------------------------------------ the boundary BCE
def test_boundary_bce_refuses_other_shapes_naming_them():
    with pytest.raises(ValueError, match=r'logits \(1, 1, 4, 4\) and target \(1, 1, 4, 5\)'):
        BoundaryBCELoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


# ---------------------------------------------------------- the attention loss
def seg_case():
    seg = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    return seg.view(1, 2, 1, 4), torch.tensor([[[0, 0, 1, IGN]]])


def test_attention_threshold_zero_selects_every_labelled_pixel_one_none():
    seg, label = seg_case()
    b = torch.tensor([-30.0, 0.0, 1.0, 30.0], dtype=torch.float64).view(1, 1, 1, 4)
    all_labelled = np.mean([ref.cross_entropy(seg[0, :, 0, i].numpy(), label[0, 0, i].item())
                            for i in range(3)])
    assert BoundaryAttentionLoss(threshold=0.0)(seg, label, boundary_logits=b).item() == \
        pytest.approx(all_labelled, rel=1e-12)
    assert BoundaryAttentionLoss(threshold=1.0)(seg, label, boundary_logits=b).item() == 0.0


def test_attention_threshold_is_strict():
    """sigmoid(b) > t: at t = 0.5 a logit of exactly 0 is not selected."""
    seg, label = seg_case()
    b = torch.tensor([0.0, 5.0, -5.0, -5.0], dtype=torch.float64).view(1, 1, 1, 4)
    assert BoundaryAttentionLoss(threshold=0.5)(seg, label, boundary_logits=b).item() == \
        pytest.approx(ref.cross_entropy(seg[0, :, 0, 1].numpy(), 0), rel=1e-12)


def test_attention_without_boundary_map_default_radius_is_one():
    """Standalone (no boundary map): the ground-truth boundary band of radius
    1, i.e. the two columns either side of a vertical border."""
    label = torch.zeros(1, 4, 8, dtype=torch.long)
    label[..., 4:] = 1
    seg = torch.randn(1, 2, 4, 8, dtype=torch.float64)
    sel = [(y, x) for y in range(4) for x in (3, 4)]
    hand = np.mean([ref.cross_entropy(seg[0, :, y, x].numpy(), label[0, y, x].item())
                    for y, x in sel])
    assert BoundaryAttentionLoss()(seg, label).item() == pytest.approx(hand, rel=1e-12)


def test_attention_weighted_path_one_pixel_is_its_cross_entropy():
    seg, label = seg_case()
    b = torch.tensor([5.0, -5.0, -5.0, -5.0], dtype=torch.float64).view(1, 1, 1, 4)
    weight = torch.ones(1, 1, 4, dtype=torch.float64)
    loss = BoundaryAttentionLoss()(seg, label, weight=weight, boundary_logits=b)
    assert loss.item() == pytest.approx(ref.cross_entropy(seg[0, :, 0, 0].numpy(), 0),
                                        rel=1e-12)


def test_attention_bad_upcast_logits_error_names_the_loss():
    seg, label = seg_case()
    with pytest.raises(ValueError, match='^BoundaryAttentionLoss upcast_logits must be'):
        BoundaryAttentionLoss()(seg, label, upcast_logits=seg[..., :2])


# -------------------------------------------------------- the image gradient
def grey_image(grey):
    g = torch.as_tensor(np.asarray(grey), dtype=torch.float64)
    return (g * 255)[None, None].expand(1, 3, *g.shape)


# multiples of 1/8: exact through the 0..255 scaling, magnitude 0.75 at column 3
EXACT_RAMP = [0, 0, 0, 0.25, 0.75, 0.875, 1, 1]


@pytest.mark.parametrize('sigma', [0.0, 0.5, 1.4])
def test_sobel_kernels_equal_the_reference(sigma):
    s, d = sobel_kernels(sigma, 'cpu', torch.float64)
    rs, rd = ref.gaussian_sobel_kernels(sigma)
    np.testing.assert_allclose(s.numpy(), rs, atol=1e-15)
    np.testing.assert_allclose(d.numpy(), rd, atol=1e-15)


def test_sobel_of_every_channel():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (1, 3, 6, 7))
    gx, gy = sobel(torch.as_tensor(x))
    for c in range(3):
        rx, ry = ref.sobel(x[0, c])
        np.testing.assert_allclose(gx[0, c].numpy(), rx, atol=1e-12)
        np.testing.assert_allclose(gy[0, c].numpy(), ry, atol=1e-12)


def test_image_gradient_defaults():
    """Sobel by default; Canny's defaults sigma 1.4, thresholds .05 / .15."""
    rng = np.random.default_rng(6)
    image = torch.as_tensor(rng.uniform(0, 255, (1, 3, 12, 14)))
    np.testing.assert_allclose(ImageGradient()(image)[0, 0].numpy(),
                               ref.sobel_magnitude(image[0].numpy()), atol=1e-12)
    canny = ImageGradient(method='canny')
    assert (canny.sigma, canny.low, canny.high) == (1.4, 0.05, 0.15)
    expected = canny_edges(image, sigma=1.4, low=0.05, high=0.15)
    assert torch.equal(canny(image), expected) and torch.equal(canny_edges(image), expected)
    assert 0 < expected.sum() < expected.numel() / 2
    with pytest.raises(ValueError, match=r"method must be one of \('sobel', 'canny'\), "
                                         r"got 'prewitt'"):
        ImageGradient(method='prewitt')


def test_canny_thresholds_are_inclusive_and_flat_pixels_no_edges():
    img = grey_image(np.tile(EXACT_RAMP, (5, 1)))
    edges = canny_edges(img, sigma=0, low=0.1, high=0.75)[0, 0]
    assert edges[:, 3].sum() == 5, 'magnitude 0.75 >= high 0.75 is strong'
    # low = 0: still no edge where the gradient is 0, even next to a strong
    # edge (a horizontal step between rows 3 and 4: rows 2 and 5 are flat)
    step = grey_image(np.tile([0, 0, 0, 0, 1, 1, 1, 1], (5, 1)).T)
    edges = canny_edges(step, sigma=0, low=0.0, high=0.75)[0, 0]
    np.testing.assert_array_equal(edges.sum(1).numpy(), [0, 0, 0, 5, 5, 0, 0, 0])


# ------------------------------------------------------------ the dual-task loss
def test_gumbel_draws_are_clamped_away_from_0_and_1(monkeypatch):
    """u in [eps, 1 - eps]: a draw of exactly 0 (or very close to 1) gives
    the noise of eps (of 1 - eps), finite."""
    u = torch.tensor([0.0, 0.9999999, 0.5, 1e-9], dtype=torch.float64)
    monkeypatch.setattr(torch, 'rand_like', lambda x, **kw: u.view_as(x).clone())
    x = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    clamped = u.clamp(1e-6, 1 - 1e-6)
    for tau in (1.0, 0.5):
        expected = (x - torch.log(-torch.log(clamped))) / tau
        torch.testing.assert_close(gumbel_logits(x, tau), expected, rtol=1e-12, atol=1e-12)
    sample = gumbel_softmax(x.view(1, 4), 0.5, dim=1)
    torch.testing.assert_close(sample, torch.softmax(expected.view(1, 4), dim=1))


def test_gumbel_softmax_along_the_given_dim():
    x = torch.randn(2, 3, 4, 5)
    for dim in (0, 2):
        torch.testing.assert_close(gumbel_softmax(x, 0.5, dim=dim).sum(dim),
                                   torch.ones(()).expand_as(x.sum(dim)))


@pytest.mark.parametrize('sigma', [0.0, 0.5, 1.0, 1.4])
def test_dual_task_footprint_is_the_filter_radius(sigma):
    s, _ = ref.gaussian_sobel_kernels(sigma)
    assert DualTaskLoss(sigma=sigma).footprint() == len(s) // 2


def test_dual_task_errors_name_the_problem():
    with pytest.raises(ValueError, match='sigma must be >= 0 pixels, got -1'):
        DualTaskLoss(sigma=-1)
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r'seg_logits \(N, C, H, W\) and seg_label \(N, H, W\), '
                                         r'got \(2, 4, 4\) and \(1, 4, 4\)'):
        DualTaskLoss()(torch.zeros(2, 4, 4), label)
    with pytest.raises(ValueError, match=r'got \(1, 2, 4, 4\) and \(4, 4\)'):
        DualTaskLoss()(torch.zeros(1, 2, 4, 4), label[0])
    with pytest.raises(ValueError, match='^DualTaskLoss upcast_logits must be'):
        DualTaskLoss()(torch.zeros(1, 2, 4, 4), label, upcast_logits=torch.zeros(1, 2, 4, 3))


# ---------------------------------------------------------------------- fusions
@pytest.mark.parametrize('kind,fusion', [('aspp', ASPPBoundaryFusion),
                                         ('fcn', ClassifierBoundaryFusion)])
def test_fusion_defaults_configs_and_errors(kind, fusion):
    """64 channels by default; the decoder's conv_cfg and act_cfg reach the
    branch; init_cfg is used; the decoder keeps its output size; a wrong
    decoder and a decoder run without a boundary map are named."""
    decoder = MODELS.build(tiny_decoder(kind, act_cfg=dict(type='LeakyReLU'),
                                        conv_cfg=dict(type='Conv2dAdaptivePadding')))
    init = dict(type='Normal', std=0.01, layer='Conv2d')
    fuse = fusion(decoder, init_cfg=init)
    assert fuse.init_cfg == init
    assert fuse.branch.conv.out_channels == 64
    assert type(fuse.branch.conv).__name__ == 'Conv2dAdaptivePadding'
    assert isinstance(fuse.branch.activate, nn.LeakyReLU)
    feats = [torch.randn(1, c, 4, 6) for c in (8, 16, 32, 64)]
    with pytest.raises(RuntimeError, match='ran without a boundary map: call it through '
                                           'GatedShapeHead, not directly'):
        decoder.eval()(feats)
    with torch.no_grad(), fuse.attached(torch.rand(1, 1, 16, 24)):
        assert decoder(feats).shape == (1, len(TINY_CLASSES), 4, 6)
    other = MODELS.build(tiny_decoder('fcn'))
    with pytest.raises(ValueError, match='got FCNHead'):
        ASPPBoundaryFusion(other)
    with pytest.raises(ValueError, match='got Conv2d'):
        ClassifierBoundaryFusion(nn.Conv2d(1, 1, 1))


def test_upcast_makes_half_precision_float32_only():
    from mmgscnn.models.losses.utils import upcast
    for dtype, expected in [(torch.float16, torch.float32), (torch.bfloat16, torch.float32),
                            (torch.float32, torch.float32), (torch.float64, torch.float64)]:
        x = torch.tensor([1.5, -2.25], dtype=dtype)
        assert upcast(x).dtype == expected and torch.equal(upcast(x).double(), x.double())


def test_gumbel_softmax_passes_its_eps_on(monkeypatch):
    u = torch.tensor([[0.0, 0.5]], dtype=torch.float64)  # u = 0 clamped to eps = 0.1
    monkeypatch.setattr(torch, 'rand_like', lambda x, **kw: u.clone())
    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    noisy = x - torch.log(-torch.log(torch.tensor([[0.1, 0.5]], dtype=torch.float64)))
    torch.testing.assert_close(gumbel_logits(x, 1.0, eps=0.1), noisy)
    torch.testing.assert_close(gumbel_softmax(x, 1.0, eps=0.1), torch.softmax(noisy, 1))


def test_dual_task_weighted_normaliser_is_clamped_at_one(monkeypatch):
    """Uniform pixel weights w: the weighted p+ counts are w |p+|; the loss is
    sum(w |zeta - zeta_hat|) / max(w |p+|, 1): the unweighted loss when
    w |p+| >= 1, w |p+| times it below."""
    u = ref.fix_uniform_noise(monkeypatch)
    label = torch.zeros(1, 8, 10, dtype=torch.long)
    label[..., 5:] = 1
    logits = torch.randn(1, 2, 8, 10, dtype=torch.float64, generator=torch.Generator()
                         .manual_seed(2))
    loss = DualTaskLoss(sigma=0.0)
    plain = loss(logits, label).item()
    total, on_gt, on_pred = ref.dual_task_parts(logits[0].numpy(), label[0].numpy(),
                                                u[(1, 2, 8, 10)][0].numpy(), 0.5, 0.0)
    count = max(on_gt, on_pred)
    assert plain == pytest.approx(total / count, rel=1e-9) and count > 20
    for w in (0.5, 0.2 / count):
        weighted = loss(logits, label, weight=torch.full((1, 8, 10), w, dtype=torch.float64))
        assert weighted.item() == pytest.approx(plain * min(1.0, w * count), rel=1e-9)


def test_canny_low_threshold_is_inclusive():
    """A weak pixel whose magnitude equals ``low`` exactly, next to a strong
    one, is kept (row 5 of the fading ramp: see test_method_formulas)."""
    img = np.linspace(0.25, 0.05, 16)[:, None] * np.array([0, 0, 0, 0.2, 0.8, 0.9, 1, 1])[None]
    image = grey_image(img)
    gx, gy = sobel(image.mean(dim=1, keepdim=True) / 255.0)  # as canny_edges computes it
    low = torch.sqrt(gx * gx + gy * gy)[0, 0, 5, 3].item()
    assert 0.14 < low < 0.15
    edges = canny_edges(image, sigma=0, low=low, high=0.15)[0, 0]
    np.testing.assert_array_equal(edges[:, 3].numpy(), [1] * 6 + [0] * 10)
