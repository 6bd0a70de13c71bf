"""mmgscnn.models.losses.boundary_attention_loss: cross-entropy on the
pixels the boundary map (or the label boundaries) selects, on hand-made
cases, degenerate inputs and autocast."""
import pytest
import torch
import torch.nn.functional as F

from mmgscnn.models import BoundaryAttentionLoss

from helpers import check_loss_name, degenerate_cases, losses_on_case, two_regions


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


@pytest.mark.parametrize('case', degenerate_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize('autocast', [False, True])
def test_attention_loss_finite_on_degenerate_inputs(case, autocast):
    """Random, all-ignored, one-class and huge logits, in float32 and
    under bfloat16 autocast: a finite loss and finite gradients."""
    boundary = torch.randn(case[1].shape[0], 1, *case[1].shape[-2:])
    loss = BoundaryAttentionLoss()
    losses, grad = losses_on_case(
        case, autocast, lambda x, label: loss(x, label, boundary_logits=boundary), loss)
    assert all(torch.isfinite(loss) for loss in losses), losses
    assert torch.isfinite(grad).all()


def test_attention_loss_name_follows_mmseg_convention():
    check_loss_name(BoundaryAttentionLoss, 'loss_attention')
