"""Boundary targets and the three boundary losses, on hand-made cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmgscnn.models import BoundaryAttentionLoss, BoundaryBCELoss, DualTaskLoss
from mmgscnn.models.shape_stream import label_boundaries


def two_regions(h=12, w=16, col=8, left=0, right=1):
    label = torch.full((1, h, w), right, dtype=torch.long)
    label[..., :col] = left
    return label


# ---------------------------------------------------------- boundary targets
@pytest.mark.parametrize('radius', [1, 2, 3])
def test_two_regions_give_a_band_of_width_2r(radius):
    boundary, valid = label_boundaries(two_regions(col=8), radius=radius)
    b = boundary[0, 0]
    expected = torch.zeros(12, 16)
    expected[:, 8 - radius:8 + radius] = 1
    assert torch.equal(b, expected)
    assert valid.all()


def test_label_zero_boundaries_are_found():
    label = torch.zeros(1, 10, 10, dtype=torch.long)
    label[:, 4:6, 4:6] = 0
    label[:, :, 7:] = 3       # class 0 next to class 3
    b = label_boundaries(label)[0][0, 0]
    assert b[:, 6].all() and b[:, 7].all() and b[:, :6].sum() == 0


def test_frame_and_ignore_make_no_boundary():
    label = torch.full((1, 10, 12), 2, dtype=torch.long)
    b = label_boundaries(label)[0]
    assert b.sum() == 0  # a single class: the image frame is no boundary
    label[:, 3:7, 3:7] = 255
    b, valid = label_boundaries(label, ignore_index=255)
    assert b.sum() == 0  # class 2 next to ignored pixels: no boundary
    assert not valid[0, 0, 3:7, 3:7].any() and valid.sum() == 120 - 16
    # an ignored strip between two classes keeps them apart at radius 1 ...
    label = two_regions(col=6)
    label[..., 6:8] = 255
    assert label_boundaries(label, radius=1)[0].sum() == 0
    # ... and at radius 3 the pixels 3 columns apart see each other across it
    b = label_boundaries(label, radius=3)[0][0, 0]
    assert b[:, 5].all() and b[:, 8].all() and b.sum() == 2 * 12


# --------------------------------------------------------------- boundary BCE
def test_boundary_bce_hand_computed():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    valid = torch.tensor([[[[True, True], [True, False]]]])
    loss = BoundaryBCELoss(loss_weight=1.0)(logits, target, valid)
    # valid: 1 positive, 2 negatives -> positive weight 2/3, negative weight 1/3
    sp = lambda x: float(np.log1p(np.exp(x)))  # softplus  # noqa: E731
    expected = (2 / 3 * sp(-2.0) + 1 / 3 * sp(-1.0) + 1 / 3 * sp(0.5)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert BoundaryBCELoss(loss_weight=20.0)(logits, target, valid).item() == \
        pytest.approx(20 * expected, rel=1e-6)


def test_boundary_bce_all_ignored_is_zero_with_gradient():
    logits = torch.randn(2, 1, 5, 5, requires_grad=True)
    loss = BoundaryBCELoss()(logits, torch.ones(2, 1, 5, 5), torch.zeros(2, 1, 5, 5, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(logits.grad).all()


def test_boundary_bce_extreme_logits_finite():
    logits = torch.tensor([[[[1e4, -1e4], [-1e4, 1e4]]]], requires_grad=True)
    target = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    loss = BoundaryBCELoss()(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 1000 and torch.isfinite(logits.grad).all()


# ------------------------------------------------------------- attention loss
def test_attention_loss_no_pixel_passes_is_zero_with_finite_gradient():
    seg = torch.randn(2, 3, 6, 7, requires_grad=True)
    label = torch.randint(0, 3, (2, 6, 7))
    boundary_logits = torch.full((2, 1, 6, 7), -5.0)  # probability 0.007 < 0.8
    loss = BoundaryAttentionLoss()(seg, label, boundary_logits=boundary_logits)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(seg.grad).all() and seg.grad.abs().sum() == 0


def test_attention_loss_is_ce_on_selected_pixels():
    seg = torch.randn(1, 3, 4, 5)
    label = torch.randint(0, 3, (1, 4, 5))
    label[0, 0, 0] = 255
    boundary_logits = torch.full((1, 1, 4, 5), -5.0)
    boundary_logits[0, 0, :2, :2] = 5.0     # 4 selected, one of them ignored
    loss = BoundaryAttentionLoss(loss_weight=2.0)(seg, label, ignore_index=255,
                                                  boundary_logits=boundary_logits)
    ce = F.cross_entropy(seg, label.clamp(max=2), reduction='none')[0]
    expected = 2.0 * (ce[0, 1] + ce[1, 0] + ce[1, 1]) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_attention_loss_without_boundary_map_uses_label_boundaries():
    label = two_regions(col=8)
    seg = torch.randn(1, 2, 12, 16)
    loss = BoundaryAttentionLoss(radius=1)(seg, label)
    ce = F.cross_entropy(seg, label, reduction='none')[0]
    assert loss.item() == pytest.approx(ce[:, 7:9].mean().item(), rel=1e-5)


# ----------------------------------------------------------------- dual task
def confident(label, num_classes, margin=20.0, dtype=torch.float32):
    """Logits whose argmax is ``label`` with a large margin."""
    onehot = F.one_hot(label.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2)
    return (onehot.to(dtype) * 2 - 1) * margin / 2


def test_dual_task_zero_when_prediction_equals_gt():
    torch.manual_seed(0)
    label = two_regions(h=16, w=24, col=10)
    loss = DualTaskLoss()(confident(label, 2), label)
    wrong = DualTaskLoss()(confident(two_regions(h=16, w=24, col=16), 2), label)
    assert loss.item() < 1e-3 and wrong.item() > 0.1


def test_dual_task_grows_as_boundary_moves_away():
    label = two_regions(h=16, w=32, col=12)
    values = []
    for shift in range(5):  # within the reach of the smoothed boundary maps
        torch.manual_seed(0)
        pred = confident(two_regions(h=16, w=32, col=12 + shift), 2)
        values.append(DualTaskLoss()(pred, label).item())
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_dual_task_gradient_only_near_boundaries():
    torch.manual_seed(0)
    label = two_regions(h=16, w=40, col=20)
    logits = confident(two_regions(h=16, w=40, col=22), 2).requires_grad_(True)
    DualTaskLoss()(logits, label).backward()
    per_col = logits.grad.abs().sum(dim=(0, 1, 2))
    near = torch.zeros(40, dtype=torch.bool)
    near[20 - 8:22 + 8] = True
    assert per_col[near].sum() > 0
    assert per_col[~near].sum() == 0, per_col


def test_dual_task_gradcheck_float64():
    torch.manual_seed(0)
    label = torch.zeros(1, 7, 8, dtype=torch.long)
    label[:, :, 4:] = 1
    label[:, 5:, :2] = 2
    logits = (torch.randn(1, 3, 7, 8, dtype=torch.float64) * 2).requires_grad_(True)
    loss = DualTaskLoss(sigma=0.8)

    def f(x):
        torch.manual_seed(1)  # the same Gumbel noise at every evaluation
        return loss(x, label)

    assert torch.autograd.gradcheck(f, (logits, ), eps=1e-6, atol=1e-5)


def test_dual_task_ignore_regions_make_no_loss_and_get_no_gradient():
    torch.manual_seed(0)
    label = torch.full((1, 16, 16), 1, dtype=torch.long)
    label[:, :, :6] = 255   # ignored strip next to class 1: not a boundary
    logits = confident(label, 3).requires_grad_(True)
    loss = DualTaskLoss()(logits, label)
    loss.backward()
    assert loss.item() < 1e-3
    assert logits.grad[..., :6].abs().sum() == 0


def test_dual_task_any_number_of_classes_and_resized_logits():
    torch.manual_seed(0)
    for c in (2, 5, 19, 40):
        label = torch.randint(0, c, (2, 16, 20))
        loss = DualTaskLoss()(torch.randn(2, c, 8, 10), label)  # half resolution
        assert torch.isfinite(loss) and loss.item() > 0


# ------------------------------------------- degenerate inputs and autocast
def degenerate_cases():
    n, c, h, w = 2, 4, 12, 16
    rand_label = torch.randint(0, c, (n, h, w))
    return [
        ('random', torch.randn(n, c, h, w) * 3, rand_label),
        ('all_ignore', torch.randn(n, c, h, w), torch.full((n, h, w), 255)),
        ('single_class', torch.randn(n, c, h, w), torch.full((n, h, w), 2)),
        ('extreme_logits', torch.randn(n, c, h, w) * 1e4, rand_label),
        ('fp16_max_logits', torch.full((n, c, h, w), 6.0e4), rand_label),
    ]


@pytest.mark.parametrize('case', degenerate_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize('autocast', [False, True])
def test_losses_finite(case, autocast):
    _, seg, label = case
    seg = seg.clone().requires_grad_(True)
    boundary = torch.randn(seg.shape[0], 1, *seg.shape[-2:]).requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        target, valid = label_boundaries(label)
        x = seg * 1.0   # an op under autocast, like a real head's output
        losses = [
            BoundaryBCELoss(20.0)(boundary * 1.0, target, valid),
            BoundaryAttentionLoss()(x, label, boundary_logits=boundary),
            BoundaryAttentionLoss()(x, label),
            DualTaskLoss()(x, label),
        ]
    total = sum(losses)
    total.backward()
    for loss in losses:
        assert torch.isfinite(loss), losses
    assert torch.isfinite(seg.grad).all() and torch.isfinite(boundary.grad).all()


def test_losses_follow_mmseg_loss_decode_convention():
    for cls, name in ((DualTaskLoss, 'loss_dual_task'),
                      (BoundaryAttentionLoss, 'loss_attention'),
                      (BoundaryBCELoss, 'loss_boundary')):
        assert cls().loss_name == name
        assert cls(loss_name='loss_custom').loss_name == 'loss_custom'
        with pytest.raises(ValueError, match="must start with 'loss_'"):
            cls(loss_name='dual')
