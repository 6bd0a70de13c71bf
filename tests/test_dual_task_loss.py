"""mmgscnn.models.losses.dual_task_loss: the loss's shape on hand-made cases."""
import pytest
import torch
import torch.nn.functional as F

import mmgscnn.models.losses.dual_task_loss as dual_task
from mmgscnn.models import DualTaskLoss


def split(h, w, col, left=0, right=1):
    label = torch.full((1, h, w), right, dtype=torch.long)
    label[..., :col] = left
    return label


def logits_for(label, num_classes, margin):
    """Every class at 0 except the labelled one at ``margin``."""
    x = torch.zeros(label.shape[0], num_classes, *label.shape[1:])
    return x.scatter_(1, label.unsqueeze(1), margin)


def loss_at(shift, num_classes, margin, noise=True, seed=0):
    label = split(64, 64, 30)
    pred = logits_for(split(64, 64, 30 + shift), num_classes, margin)
    torch.manual_seed(seed)
    return DualTaskLoss()(pred, label).item() if noise else None


@pytest.mark.parametrize('num_classes', [2, 5, 19])
@pytest.mark.parametrize('margin', [2.0, 3.0, 5.0])
def test_loss_grows_with_the_boundary_offset(num_classes, margin):
    """At typical confidences, with the Gumbel noise, and for 2..19 classes,
    a boundary predicted further from the true one costs more, up to where
    the smoothed boundary maps no longer overlap."""
    values = [loss_at(s, num_classes, margin) for s in (0, 1, 2, 3, 4, 6)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    far = loss_at(10, num_classes, margin)
    assert far >= values[-1] - 0.02 * values[-1], (values, far)


def test_loss_grows_with_the_offset_without_noise(monkeypatch):
    """The deterministic limit (softmax instead of the Gumbel sample) too,
    with 19 classes and a small margin, where summing every class's
    difference or averaging each band separately would not grow."""
    monkeypatch.setattr(dual_task, 'gumbel_softmax',
                        lambda logits, tau: torch.softmax(logits / tau, dim=1))
    values = [loss_at(s, 19, 2.0) for s in (0, 1, 3, 6)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_uninvolved_classes_add_nothing():
    """Probability mass of classes that meet at no boundary changes nothing:
    the loss of a two-class scene is the same with 2 or 19 output channels
    when the other 17 channels carry (almost) no probability."""
    label = split(32, 40, 20)
    two = logits_for(label, 2, 30.0)
    many = torch.cat([two, torch.full((1, 17, 32, 40), -60.0)], dim=1)
    torch.manual_seed(0)
    a = DualTaskLoss()(two, label)
    torch.manual_seed(0)
    b = DualTaskLoss()(many, label)
    assert abs(a.item() - b.item()) < 1e-3


def test_temperature_default_is_the_official_codes():
    assert DualTaskLoss().tau == 0.5
    with pytest.raises(ValueError, match='tau'):
        DualTaskLoss(tau=0)


def test_one_channel_binary_logits_are_read_as_two_classes():
    label = split(24, 32, 14)
    x = torch.where(split(24, 32, 18) == 1, 4.0, -4.0).unsqueeze(1).requires_grad_(True)
    torch.manual_seed(0)
    loss = DualTaskLoss()(x, label)
    loss.backward()
    assert loss.item() > 0.05 and x.grad.abs().sum() > 0
    two = torch.cat([torch.zeros_like(x), x], dim=1).detach()
    torch.manual_seed(0)
    assert DualTaskLoss()(two, label).item() == pytest.approx(loss.item(), rel=1e-6)


def test_boundary_magnitude_of_a_hard_step():
    step = split(9, 12, 6).float().unsqueeze(1)
    zeta = dual_task.boundary_magnitude(step, sigma=0)
    assert zeta[0, 0, 4].tolist() == pytest.approx([0] * 5 + [1, 1] + [0] * 5, abs=1e-5)
    smooth = dual_task.boundary_magnitude(step, sigma=1.0)[0, 0, 4]
    assert smooth[:3].max() < 1e-5 and smooth[3] > 1e-3 and smooth[9:].max() < 1e-5
    assert smooth.sum() == pytest.approx(2.0, abs=1e-4)
