"""mmgscnn.models.losses.boundary_bce_loss: class-balanced boundary BCE on
hand-made cases, degenerate inputs and autocast."""
import numpy as np
import pytest
import torch

from mmgscnn.models import BoundaryBCELoss
from mmgscnn.models.shape_stream import label_boundaries

from helpers import check_loss_name, degenerate_cases


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
    loss = BoundaryBCELoss()(logits, torch.ones(2, 1, 5, 5),
                             torch.zeros(2, 1, 5, 5, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(logits.grad).all()


def test_boundary_bce_extreme_logits_finite():
    logits = torch.tensor([[[[1e4, -1e4], [-1e4, 1e4]]]], requires_grad=True)
    target = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    loss = BoundaryBCELoss()(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 1000 and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('case', degenerate_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize('autocast', [False, True])
def test_boundary_bce_finite_on_degenerate_inputs(case, autocast):
    """Random, all-ignored, one-class and huge logits, in float32 and
    under bfloat16 autocast: a finite loss and finite gradients."""
    _, seg, label = case
    boundary = torch.randn(seg.shape[0], 1, *seg.shape[-2:]).requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        target, valid = label_boundaries(label)
        loss = BoundaryBCELoss(20.0)(boundary * 1.0, target, valid)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(boundary.grad).all()


def test_boundary_bce_loss_name_follows_mmseg_convention():
    check_loss_name(BoundaryBCELoss, 'loss_boundary')
