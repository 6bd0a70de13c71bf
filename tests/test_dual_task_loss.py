"""mmgscnn.models.losses.dual_task_loss: the loss's shape on hand-made cases,
degenerate inputs and autocast, and the loss as a plain ``loss_decode``
entry of unmodified mmseg models."""
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
import mmgscnn.models.losses.dual_task_loss as dual_task
from mmgscnn.models import DualTaskLoss

import method_references
from helpers import (TINY_CLASSES, check_loss_name, degenerate_cases, draw_scene,
                     losses_on_case, tiny_runner_config, two_regions, write_camvid_layout)


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
    monkeypatch.setattr(dual_task, 'gumbel_logits', lambda logits, tau: logits / tau)
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


def test_dual_task_any_number_of_classes_and_resized_logits(monkeypatch):
    """Logits at half the label size, 2 to 40 classes: the loss of the
    bilinearly enlarged logits, equal to the float64 reference
    (method_references.dual_task_loss) with the Gumbel noise fixed."""
    u = method_references.fix_uniform_noise(monkeypatch)
    torch.manual_seed(0)
    for c in (2, 5, 19, 40):
        label = torch.randint(0, c, (2, 16, 20))
        logits = torch.randn(2, c, 8, 10, dtype=torch.float64)
        loss = DualTaskLoss()(logits, label)  # half resolution
        big = F.interpolate(logits, size=(16, 20), mode='bilinear', align_corners=False)
        expected = method_references.dual_task_loss(big.numpy(), label.numpy(),
                                                    u[tuple(big.shape)].numpy(), 0.5, 1.0)
        assert loss.item() == pytest.approx(expected, rel=1e-9) and expected > 0.05


@pytest.mark.parametrize('case', degenerate_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize('autocast', [False, True])
def test_dual_task_finite_on_degenerate_inputs(case, autocast):
    """Random, all-ignored, one-class and huge logits, in float32 and
    under bfloat16 autocast: a finite loss and finite gradients."""
    (loss, ), grad = losses_on_case(case, autocast, DualTaskLoss())
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_dual_task_loss_name_follows_mmseg_convention():
    check_loss_name(DualTaskLoss, 'loss_dual_task')


MMSEG_CONFIGS = {
    'FCNHead': 'fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'PSPHead': 'pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'DepthwiseSeparableASPPHead':
    'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
}


def user_config(tmp_path, head):
    """mmseg's own R18 config (BN, no download, our classes) plus only the
    dual-task loss entry, as a user would write it."""
    path = tmp_path / f'{head}.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = ['mmseg::{MMSEG_CONFIGS[head]}']
        custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            pretrained=None,
            data_preprocessor=dict(size=None, size_divisor=8),
            backbone=dict(norm_cfg=norm_cfg),
            decode_head=dict(
                num_classes={len(TINY_CLASSES)}, norm_cfg=norm_cfg,
                loss_decode=[
                    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                    dict(type='DualTaskLoss', loss_weight=1.0),
                ]),
            auxiliary_head=dict(num_classes={len(TINY_CLASSES)}, norm_cfg=norm_cfg))
    '''))
    return Config.fromfile(str(path))


def batch(model, h=40, w=48, ignore=True):
    rng = np.random.default_rng(0)
    imgs, samples = [], []
    for _ in range(2):
        img, label = draw_scene(rng, h, w)
        label = torch.from_numpy(label).long()[None]
        if ignore:
            label[:, :, :24] = 255
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


@pytest.mark.parametrize('head', list(MMSEG_CONFIGS))
def test_dual_task_loss_in_plain_mmseg_model(tmp_path, head):
    cfg = user_config(tmp_path, head)
    assert cfg.model.type == 'EncoderDecoder' and cfg.model.decode_head.type == head
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = batch(model)

    # gradients of the dual-task loss alone reach the decode head
    losses = model(**data, mode='loss')
    assert 'decode.loss_dual_task' in losses and 'decode.loss_ce' in losses
    model.zero_grad()
    losses['decode.loss_dual_task'].backward()
    grads = [p.grad for p in model.decode_head.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0

    # ignored pixels: changing the logits there leaves the loss unchanged
    head_module = model.decode_head
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        seg_logits = head_module(feats)
    torch.manual_seed(0)
    ref = head_module.loss_by_feat(seg_logits, data['data_samples'])['loss_dual_task']
    # the label is ignored on columns < 24 of 48; the first logit column only
    # reaches image columns < 12 when upsampled (stride 4 or 8)
    changed = seg_logits.clone()
    changed[..., :1] += 5 * torch.randn_like(changed[..., :1])
    torch.manual_seed(0)
    again = head_module.loss_by_feat(changed, data['data_samples'])['loss_dual_task']
    assert torch.allclose(ref, again), (ref, again)

    # finite under bf16 autocast
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_dual_task_loss_logged_in_runner_training(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    model = user_config(tmp_path, 'DepthwiseSeparableASPPHead').model
    cfg = tiny_runner_config(tmp_path / 'work', data_root, model=model, max_iters=2,
                             interval=2, val=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.log_scalars['train/decode.loss_dual_task']
    values = history.data[0]
    assert len(values) == 2 and np.isfinite(values).all() and (values > 0).all()
