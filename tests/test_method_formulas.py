"""Every formula of the method against an independent reference: hand-made
cases and the float64 numpy re-implementations of ``method_references``
(written from the paper, sharing no code with mmgscnn). docs/testing.md
lists which test catches which planted bug."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.models.losses import BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss
from mmgscnn.models.losses.dual_task_loss import gumbel_logits
from mmgscnn.models.segmentors.gscnn_encoder_decoder import padding_mask
from mmgscnn.models.shape_stream import GatedSpatialConv, ShapeStream, boundary_target
from mmgscnn.models.shape_stream.image_gradient import canny_edges, sobel_magnitude

import method_references as ref
from helpers import tiny_model

D = torch.float64


def t64(x):
    return torch.as_tensor(np.asarray(x), dtype=D)


def as_image(grey):
    """(H, W) grey levels in 0..1 -> (1, 3, H, W) float64 pixel values."""
    return t64(grey)[None, None].expand(1, 3, *np.shape(grey)) * 255


# --------------------------------------------------------------------- the GCL
@pytest.mark.parametrize('kernel_size', [1, 3])
def test_gcl_output_is_conv_of_x_times_one_plus_alpha(kernel_size):
    """out = conv(x * (1 + alpha)), alpha = sigmoid(...) one channel per
    pixel, in (0, 1), not 0, depending on the gate. Only the public forward
    and the output convolution's weight are used: with that weight set to
    the identity the output is x * (1 + alpha), which gives alpha; with a
    random weight it must be the convolution of x * (1 + alpha)."""
    torch.manual_seed(0)
    gcl = GatedSpatialConv(3, 3, kernel_size)
    x = torch.rand(2, 3, 5, 6) + 0.5          # away from 0: out / x is well defined
    gate = torch.randn(2, 1, 5, 6) * 3
    for m in gcl.modules():  # BN statistics of this batch: alpha spread over (0, 1)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        gcl(x, gate)
    gcl.eval()
    random_weight = gcl.conv.weight.detach().clone().normal_()
    identity = torch.zeros_like(random_weight)
    identity[:, :, kernel_size // 2, kernel_size // 2] = torch.eye(3)
    with torch.no_grad():
        gcl.conv.weight.copy_(identity)
        z = gcl(x, gate)
        alpha = z / x - 1                      # (N, C, H, W): all channels equal
        torch.testing.assert_close(alpha, alpha[:, :1].expand_as(alpha), rtol=0, atol=1e-5)
        alpha = alpha[:, :1]
        assert (alpha > 0).all() and (alpha < 1).all() and alpha.std() > 0.02
        gcl.conv.weight.copy_(random_weight)
        out = gcl(x, gate)
        expected = torch.nn.functional.conv2d(x.double() * (1 + alpha.double()),
                                              random_weight.double(), padding=kernel_size // 2)
        torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
        # alpha is the gate's doing: another gate, another alpha
        gcl.conv.weight.copy_(identity)
        assert (gcl(x, -gate) - z).abs().max() > 1e-2


# ------------------------------------------------------ the fused boundary map
def tiny_stream(**kwargs):
    cfg = dict(in_channels=[4, 6], gate_indices=(1, ), channels=(4, 3), stem_channels=0,
               norm_cfg=dict(type='BN'))
    cfg.update(kwargs)
    return ShapeStream(**cfg).eval()


def test_fused_map_is_sigmoid_of_fuse_of_boundary_probability_and_gradient():
    """fused = sigmoid(w0 sigmoid(logits) + w1 |Sobel(image)|) (1x1 conv,
    no bias), the image gradient from the float64 reference."""
    torch.manual_seed(1)
    stream = tiny_stream()
    with torch.no_grad():
        stream.fuse.weight.copy_(torch.tensor([2.0, -3.0]).view(1, 2, 1, 1))
        stream.classifier.weight.normal_(0, 2.0)  # logits spread over several units
    image = torch.rand(1, 3, 8, 10) * 255
    feats = [torch.randn(1, 4, 2, 3), torch.randn(1, 6, 2, 3)]
    with torch.no_grad():
        logits, fused = stream(feats, image)
    assert logits.abs().max() > 1
    b = ref.sigmoid(logits[0, 0].double().numpy())
    grad = ref.sobel_magnitude(image[0].double().numpy())
    np.testing.assert_allclose(fused[0, 0].double().numpy(), ref.sigmoid(2 * b - 3 * grad),
                               rtol=1e-5, atol=1e-6)


def test_stride2_stream_sees_the_area_pooled_image_and_its_gradient():
    stream = tiny_stream(stride=2)
    image = torch.rand(1, 3, 8, 10, dtype=D) * 255
    size = stream.output_size((8, 10))
    assert size == (4, 5) and stream.output_size((9, 11)) == (5, 6)
    pixels, grad = stream.image_inputs(image, size)
    pooled = ref.area_pool(image[0].numpy(), (4, 5))
    np.testing.assert_allclose(pixels[0].numpy(), pooled / 255, rtol=1e-12)
    np.testing.assert_allclose(grad[0, 0].numpy(), ref.sobel_magnitude(pooled), atol=1e-12)


# -------------------------------------------------------- the image gradient
def ramp(profile, rows, axis):
    """A grey image constant along one axis, ``profile`` along the other."""
    img = np.tile(np.asarray(profile, np.float64), (rows, 1))
    return img if axis == 1 else img.T


STEP = [0, 0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize('axis', [1, 0], ids=['vertical_edge', 'horizontal_edge'])
def test_sobel_unit_step_gives_one_on_both_sides_of_the_edge(axis):
    mag = sobel_magnitude(as_image(ramp(STEP, 6, axis)))[0, 0].numpy()
    expected = ramp([0, 0, 0, 1, 1, 0, 0, 0], 6, axis)  # by hand: x[c+1] - x[c-1]
    np.testing.assert_allclose(mag, expected, atol=1e-12)


def test_sobel_diagonal_edge_by_hand():
    """I = 1 above the anti-diagonal r + c >= 4 of a 6x6 image: on the edge
    pixels gx = gy = (f(k+2) + 2f(k+1) - 2f(k-1) - f(k-2)) / 4 with k = r + c."""
    r, c = np.mgrid[:6, :6]
    img = (r + c >= 4).astype(np.float64)
    mag = sobel_magnitude(as_image(img))[0, 0].numpy()
    # interior pixels with k = 3 and 4: D = 3/4, magnitude sqrt(2) * 3/4 > 1 -> 1;
    # k = 2 and 5: D = 1/4 -> sqrt(2) / 4
    for (y, x), value in {(2, 1): 1.0, (2, 2): 1.0, (1, 1): 2 ** 0.5 / 4,
                          (3, 2): 2 ** 0.5 / 4, (4, 4): 0.0}.items():
        assert mag[y, x] == pytest.approx(value, abs=1e-12), (y, x)
    np.testing.assert_allclose(mag, ref.sobel_magnitude(as_image(img)[0].numpy()), atol=1e-12)


# A ramp whose derivative peaks at one column (3): Canny keeps only it.
RAMP = [0, 0, 0, 0.2, 0.8, 0.9, 1, 1]


@pytest.mark.parametrize('axis', [1, 0], ids=['vertical_edge', 'horizontal_edge'])
def test_canny_keeps_the_maximum_across_a_straight_edge(axis):
    edges = canny_edges(as_image(ramp(RAMP, 6, axis)), sigma=0)[0, 0].numpy()
    np.testing.assert_array_equal(edges, ramp([0, 0, 0, 1, 0, 0, 0, 0], 6, axis))


@pytest.mark.parametrize('sign', [1, -1], ids=['same_sign', 'opposite_sign'])
def test_canny_suppresses_along_the_diagonals(sign):
    """f(k) along k = r + c (or c - r): the maxima of the derivative along the
    gradient, compared with the pixels 2 steps of k away, are k = 6 and 7
    (D(k) = .55, .65 against D(4) = 0, D(8) = .4, D(5) = D(9) = .175)."""
    f = np.array([0, 0, 0, 0, 0, 0, 0, 0.7, 0.8] + [1.0] * 12)
    r, c = np.mgrid[:10, :10]
    k = r + c if sign == 1 else c - r + 9
    img = f[np.clip(k - (0 if sign == 1 else 3), 0, 20)]
    kk = k - (0 if sign == 1 else 3)
    edges = canny_edges(as_image(img), sigma=0)[0, 0].numpy()
    interior = (r > 1) & (r < 8) & (c > 1) & (c < 8)
    expected = (kk == 6) | (kk == 7)
    np.testing.assert_array_equal(edges[interior], expected[interior])
    np.testing.assert_array_equal(edges, ref.canny(as_image(img)[0].numpy(), 0.05, 0.15))


def test_canny_hysteresis_keeps_weak_edges_only_next_to_strong_ones():
    """Two vertical ramps of 8 px: one of contrast 1 (magnitude .8, strong),
    one of contrast .1 (.08, weak) on its own: the weak one vanishes; with
    the high threshold below .08 it stays."""
    row = np.concatenate([RAMP, np.array(RAMP) * 0.1 + 1.0]) / 1.1
    img = ramp(row, 6, 1)
    edges = canny_edges(as_image(img), sigma=0, low=0.05, high=0.15)[0, 0].numpy()
    np.testing.assert_array_equal(edges.sum(0), [0, 0, 0, 6] + [0] * 12)
    edges = canny_edges(as_image(img), sigma=0, low=0.05, high=0.06)[0, 0].numpy()
    np.testing.assert_array_equal(edges.sum(0), [0, 0, 0, 6] + [0] * 7 + [6] + [0] * 4)


def test_canny_weak_pixel_next_to_a_strong_one_survives():
    """A vertical ramp whose contrast fades down the image (.25 to .05):
    magnitude at column 3 about .8 x contrast, .197 .19 .179 .168 .158
    (strong, >= .15) on rows 0..4, then .147 .136 ... (weak): row 5 touches
    a strong pixel and stays, rows 6.. do not."""
    img = np.linspace(0.25, 0.05, 16)[:, None] * np.array(RAMP)[None]
    edges = canny_edges(as_image(img), sigma=0, low=0.05, high=0.15)[0, 0].numpy()
    np.testing.assert_array_equal(edges[:, 3], [1] * 6 + [0] * 10)
    assert edges.sum() == 6
    edges = canny_edges(as_image(img), sigma=0, low=0.15, high=0.15)[0, 0].numpy()
    np.testing.assert_array_equal(edges[:, 3], [1] * 5 + [0] * 11)
    np.testing.assert_array_equal(
        canny_edges(as_image(img), sigma=0)[0, 0].numpy(),
        ref.canny(as_image(img)[0].numpy(), 0.05, 0.15))


@pytest.mark.parametrize('seed', [0, 1])
def test_canny_on_noise_equals_the_reference(seed):
    """Random images (no ties): every direction, suppression and hysteresis
    decision equal to the float64 reference."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (3, 12, 14))
    for low, high in [(0.05, 0.15), (0.15, 0.3)]:
        got = canny_edges(t64(image)[None], sigma=0, low=low, high=high)[0, 0].numpy()
        np.testing.assert_array_equal(got, ref.canny(image, low, high))
    np.testing.assert_allclose(sobel_magnitude(t64(image)[None])[0, 0].numpy(),
                               ref.sobel_magnitude(image), atol=1e-12)


def test_canny_gaussian_smoothing_inside_the_image():
    """With sigma > 0, away from the frame: a vertical step between columns
    7 and 8 gives its two equal maxima (kept: ``>=``), a ramp one line."""
    img = ramp([0] * 8 + [1] * 8, 16, 1)
    edges = canny_edges(as_image(img), sigma=1.4)[0, 0].numpy()
    np.testing.assert_array_equal(edges[5:-5].sum(0), [0] * 7 + [6, 6] + [0] * 7)
    img = ramp([0] * 6 + RAMP[3:6] + [1] * 7, 16, 1)
    edges = canny_edges(as_image(img), sigma=1.4)[0, 0].numpy()
    np.testing.assert_array_equal(edges[5:-5].sum(0), [0] * 7 + [6] + [0] * 8)


# ------------------------------------------------------------ boundary targets
IGN = 255


def test_boundary_targets_next_to_ignored_pixels_by_hand():
    label = np.array([[0, 0, 1, 1, 1, 1],
                      [0, 0, 1, 1, 1, 1],
                      [0, 0, 1, 1, IGN, 1],
                      [0, 0, 1, 1, 1, 1],
                      [2, 2, 2, 1, 1, 1]])
    target, valid = boundary_target(torch.as_tensor(label)[None], IGN, 1)
    hand_valid = np.array([[1, 1, 1, 1, 1, 1],
                           [1, 1, 1, 0, 0, 0],
                           [1, 1, 1, 0, 0, 0],
                           [1, 1, 1, 0, 0, 0],
                           [1, 1, 1, 1, 1, 1]], bool)
    hand_target = np.array([[0, 1, 1, 0, 0, 0],
                            [0, 1, 1, 0, 0, 0],
                            [0, 1, 1, 0, 0, 0],
                            [1, 1, 1, 0, 0, 0],
                            [1, 1, 1, 1, 0, 0]], np.float64)
    np.testing.assert_array_equal(valid[0, 0].numpy(), hand_valid)
    np.testing.assert_array_equal(target[0, 0].numpy(), hand_target)
    for radius in (1, 2):
        rng = np.random.default_rng(radius)
        lab = rng.integers(0, 3, (9, 11))
        lab[rng.random((9, 11)) < 0.1] = IGN
        t, v = boundary_target(torch.as_tensor(lab)[None], IGN, radius)
        rt, rv = ref.boundary_target(lab, IGN, radius)
        np.testing.assert_array_equal(v[0, 0].numpy(), rv)
        np.testing.assert_array_equal(t[0, 0].numpy(), rt)


# ------------------------------------------------------------ the boundary BCE
def test_boundary_bce_class_balance_by_hand():
    """1 boundary pixel of 4: it weighs beta = 3/4, the others 1/4; mean over
    the 4 pixels."""
    x = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=D).view(1, 1, 2, 2)
    t = torch.tensor([1.0, 0, 0, 0], dtype=D).view(1, 1, 2, 2)
    sp = ref.softplus
    hand = (0.75 * sp(-0.5) + 0.25 * (sp(-1.0) + sp(2.0) + sp(0.0))) / 4
    assert BoundaryBCELoss()(x, t).item() == pytest.approx(hand, rel=1e-12)
    # a masked pixel is neither positive nor negative: 1 of 3 -> 2/3 and 1/3
    valid = torch.tensor([True, True, False, True]).view(1, 1, 2, 2)
    hand = (2 / 3 * sp(-0.5) + 1 / 3 * (sp(-1.0) + sp(0.0))) / 3
    assert BoundaryBCELoss()(x, t, valid).item() == pytest.approx(hand, rel=1e-12)


def gscnn_head(loss_dual_task=None):
    model = MODELS.build(tiny_model('fcn', head_kwargs=dict(
        loss_dual_task=loss_dual_task)))
    return model.decode_head


def samples(labels):
    out = []
    for lab in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.as_tensor(lab)[None])
        out.append(s)
    return out


def test_head_boundary_and_attention_losses_from_the_paper():
    """Through GatedShapeHead.loss_by_feat: the boundary BCE (weight 20) with
    targets and ignore mask from the reference (ignored pixels and their
    neighbours are neither boundary nor background), and the attention loss
    selecting pixels by sigmoid(boundary logit) > 0.8."""
    head = gscnn_head()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (2, 12, 16))
    labels[:, :, 10:] = IGN
    labels[0, 5:8, 3:6] = IGN
    seg_logits = torch.randn(2, 4, 12, 16, dtype=D)
    boundary_logits = torch.randn(2, 1, 12, 16, dtype=D) * 2
    losses = head.loss_by_feat(seg_logits, boundary_logits, samples(labels))

    rt, rv = zip(*[ref.boundary_target(lab, IGN, 1) for lab in labels])
    rt, rv = np.stack(rt), np.stack(rv)
    b = boundary_logits[:, 0].numpy()
    assert losses['loss_boundary'].item() == pytest.approx(
        20 * ref.balanced_bce(b, rt, rv), rel=1e-10)

    sel_losses = []
    for i in range(2):
        sel = (ref.sigmoid(b[i]) > 0.8) & (labels[i] != IGN)
        sel_losses += [ref.cross_entropy(seg_logits[i, :, y, x].numpy(), labels[i, y, x])
                       for y, x in zip(*np.nonzero(sel))]
    assert 0 < len(sel_losses) < (labels != IGN).sum() / 2
    assert losses['loss_attention'].item() == pytest.approx(np.mean(sel_losses), rel=1e-10)


# ---------------------------------------------------------- the attention loss
def test_attention_loss_thresholds_probabilities_by_hand():
    """sigmoid(2) = .88 > .8 is selected; sigmoid(1) = .73 and sigmoid(.9)
    = .71 are not (though the logits 1 and .9 are above .8); at .72 the
    first two are."""
    seg = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 0.0, 1.0]], dtype=D).view(1, 2, 1, 4)
    label = torch.tensor([[[0, 0, 1, 1]]])
    b = torch.tensor([2.0, 1.0, 0.9, -3.0], dtype=D).view(1, 1, 1, 4)
    loss = BoundaryAttentionLoss(threshold=0.8)(seg, label, boundary_logits=b)
    assert loss.item() == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-12)  # pixel 0 only
    loss = BoundaryAttentionLoss(threshold=0.72)(seg, label, boundary_logits=b)
    assert loss.item() == pytest.approx((np.log1p(np.exp(-1.0)) + np.log1p(np.exp(1.0))) / 2,
                                        rel=1e-12)
    assert loss.item() == pytest.approx(ref.attention_loss(
        seg[0].numpy(), label[0].numpy(), b[0, 0].numpy(), 0.72, IGN), rel=1e-12)


# ------------------------------------------------------------ the dual-task loss
@pytest.fixture
def fixed_noise(monkeypatch):
    return ref.fix_uniform_noise(monkeypatch)


@pytest.mark.parametrize('tau', [0.5, 2.0])
def test_gumbel_logits_divide_by_the_temperature(fixed_noise, tau):
    x = torch.randn(2, 3, 4, 5, dtype=D)
    got = gumbel_logits(x, tau)
    u = fixed_noise[tuple(x.shape)]
    torch.testing.assert_close(got, (x - torch.log(-torch.log(u))) / tau, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize('tau,sigma', [(0.5, 1.0), (2.0, 0.0)])
def test_dual_task_loss_equals_the_reference(fixed_noise, tau, sigma):
    rng = np.random.default_rng(3)
    label = np.zeros((2, 14, 16), np.int64)
    label[:, 4:10, 5:12] = 1
    label[1, :, 13:] = 2
    label[1, :2] = IGN
    logits = torch.as_tensor(rng.normal(0, 1, (2, 3, 14, 16)) + 3 * np.eye(3)[label.clip(
        0, 2)].transpose(0, 3, 1, 2))
    loss = DualTaskLoss(tau=tau, sigma=sigma)(logits, torch.as_tensor(label))
    u = fixed_noise[tuple(logits.shape)].numpy()
    # one p+ and one normaliser for the whole batch
    assert loss.item() == pytest.approx(ref.dual_task_loss(
        logits.numpy(), label, u, tau, sigma), rel=1e-9)
    assert DualTaskLoss(tau=0.5 * tau, sigma=sigma)(logits, torch.as_tensor(label)).item() \
        != pytest.approx(loss.item(), rel=1e-3)


def crossing(logits):
    """Mean column where the class-1 minus class-0 logit changes sign
    (linear interpolation along each row)."""
    d = (logits[0, 1] - logits[0, 0]).numpy()
    cols = []
    for row in d:
        i = np.nonzero((row[:-1] < 0) & (row[1:] >= 0))[0][0]
        cols.append(i + row[i] / (row[i] - row[i + 1]))
    return float(np.mean(cols))


@pytest.mark.parametrize('tau', [0.5, 1.0])
def test_dual_task_descent_moves_the_predicted_boundary_toward_the_true_one(fixed_noise,
                                                                            tau):
    """Truth: class 1 from column 8; prediction: from 10.5. One gradient
    step on the logits lowers the loss and moves the crossing left."""
    label = torch.zeros(1, 6, 20, dtype=torch.long)
    label[..., 8:] = 1
    cols = torch.arange(20, dtype=D)
    logits = torch.stack([torch.zeros(6, 20, dtype=D), 0.8 * (cols - 10.5).expand(6, 20)])[None]
    logits.requires_grad_(True)
    loss_fn = DualTaskLoss(tau=tau, sigma=1.0)
    loss = loss_fn(logits, label)
    loss.backward()
    before = crossing(logits.detach())
    stepped = (logits - 0.5 * logits.grad / logits.grad.abs().max()).detach()
    after = crossing(stepped)
    assert after < before - 0.05, (before, after)
    assert loss_fn(stepped, label).item() < loss.item()


# ------------------------------------------------------------------ padding mask
def test_padding_mask_by_hand():
    metas = [dict(padding_size=[0, 2, 0, 1]), dict(padding_size=[1, 0, 2, 0])]
    mask = padding_mask(metas, (5, 6), 'cpu')
    hand0 = np.ones((5, 6), bool)
    hand0[:, 4:] = False
    hand0[4:, :] = False
    hand1 = np.ones((5, 6), bool)
    hand1[:, :1] = False
    hand1[:2, :] = False
    np.testing.assert_array_equal(mask[:, 0].numpy(), np.stack([hand0, hand1]))
    assert padding_mask([dict(padding_size=[0, 0, 0, 0])], (5, 6), 'cpu') is None


def test_padding_border_is_no_edge_but_inner_edges_stay():
    """An image whose 2 right columns are padding (0): the gradient is
    zeroed where the Sobel window reaches them (columns 5..7), a real edge
    (columns 1 | 2) keeps its magnitude 1 on both sides."""
    grey = np.zeros((6, 8))
    grey[:, 2:6] = 0.5
    grey[:, :2] = 0.1
    valid = torch.ones(1, 1, 6, 8, dtype=torch.bool)
    valid[..., 6:] = False
    _, grad = tiny_stream().image_inputs(as_image(grey), (6, 8), valid)
    expected = np.zeros((6, 8))
    expected[:, 1:3] = 0.4
    np.testing.assert_allclose(grad[0, 0].numpy(), expected, atol=1e-12)
    _, unmasked = tiny_stream().image_inputs(as_image(grey), (6, 8))
    assert unmasked[0, 0, :, 5].min() == pytest.approx(0.5)


# ---------------------------------------------------------------------- fusions
def bn_params(bn):
    return (bn.running_mean.double().numpy(), bn.running_var.double().numpy(),
            bn.weight.detach().double().numpy(), bn.bias.detach().double().numpy(), bn.eps)


def randomise_bn(module):
    torch.manual_seed(5)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def fused_run(decoder, hooked):
    """A tiny GSCNN head around ``decoder`` (eval, BN statistics randomised),
    random features and a 16x24 boundary map: runs the decoder with a
    pre-hook on its submodule ``hooked`` -> (head, feats, boundary, inputs
    seen by that submodule, logits, reference branch relu(bn(w *
    area_pool(boundary)))) ."""
    head = MODELS.build(tiny_model(decoder)).decode_head.eval()
    randomise_bn(head)
    torch.manual_seed(3)
    feats = [torch.randn(1, c, 4, 6) for c in (8, 16, 32, 64)]
    boundary = torch.rand(1, 1, 16, 24)  # stream at stride 1 of a 16x24 image
    seen = []
    getattr(head.decoder, hooked).register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad(), head.fusion.attached(boundary):
        logits = head.decoder(feats)
    branch = head.fusion.branch
    expected = ref.conv1x1_bn_relu(
        ref.area_pool(boundary[0].double().numpy(), (4, 6)),
        branch.conv.weight.detach().double().numpy()[:, :, 0, 0], bn_params(branch.bn))
    return head, feats, boundary, seen, logits, expected


def test_aspp_boundary_fusion_values():
    """The extra ASPP branch is relu(bn(w * area_pool(boundary))), appended
    after the head's own branches at the bottleneck's input."""
    head, feats, boundary, seen, logits, expected = fused_run('aspp', 'bottleneck')
    assert logits.shape[-2:] == (4, 6)  # the rebuilt bottleneck keeps its padding
    n = expected.shape[0]
    got = seen[-1][0]
    assert got.shape[0] == head.decoder.bottleneck.conv.in_channels
    np.testing.assert_allclose(got[-n:].double().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert expected.std() > 0.05
    # the head's own branches are unchanged by the boundary map
    with torch.no_grad(), head.fusion.attached(boundary * 0):
        head.decoder(feats)
    torch.testing.assert_close(seen[-1][0, :-n], got[:-n])


def test_classifier_boundary_fusion_values():
    """conv_seg sees mix(cat(features, relu(bn(w * area_pool(boundary)))))."""
    head, feats, _, seen, logits, b = fused_run('fcn', 'conv_seg')
    with torch.no_grad():
        plain = head.decoder._forward_feature(feats)
    mix = head.fusion.mix
    expected = ref.conv1x1_bn_relu(
        np.concatenate([plain[0].double().numpy(), b]),
        mix.conv.weight.detach().double().numpy()[:, :, 0, 0], bn_params(mix.bn))
    np.testing.assert_allclose(seen[-1][0].double().numpy(), expected, rtol=1e-4, atol=1e-5)
    w = head.decoder.conv_seg.weight.detach().double().numpy()[:, :, 0, 0]
    bias = head.decoder.conv_seg.bias.detach().double().numpy()
    np.testing.assert_allclose(logits[0].double().numpy(),
                               np.einsum('oc,chw->ohw', w, expected) + bias[:, None, None],
                               rtol=1e-4, atol=1e-5)
