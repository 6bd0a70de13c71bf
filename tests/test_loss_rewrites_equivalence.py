"""The issue-21 rewrites of the boundary losses against a frozen copy of the
implementations they replaced (``reference_losses``): equal values and
equal gradients in float64 on random inputs (several classes, binary heads,
odd sizes, batches, ignored pixels, per-pixel weights), the same random
stream, and finite, close values under bfloat16 autocast."""
import re

import pytest
import torch

import reference_losses as ref
from mmgscnn.models.losses import DualTaskLoss
from mmgscnn.models.losses import dual_task_loss as dual_task

DUAL_CASES = [
    # N, C, H, W, sigma, tau, ignored block, per-pixel weight, logits size
    (2, 5, 23, 31, 1.0, 0.5, True, False, None),
    (1, 1, 17, 20, 0.0, 1.0, False, False, None),      # binary head, no smoothing
    (3, 4, 40, 37, 1.5, 0.7, True, True, None),
    (2, 3, 9, 9, 1.0, 0.5, True, False, None),         # smaller than the bands
    (2, 19, 32, 48, 1.0, 0.5, True, False, (8, 12)),   # logits enlarged x4
    (1, 2, 30, 29, 0.4, 2.0, True, False, None),
]


def random_labels(n, c, h, w, ignored, seed):
    g = torch.Generator().manual_seed(seed)
    # blocks of classes, so that there are boundaries and flat regions
    coarse = torch.randint(0, max(c, 2), (n, 1, (h + 4) // 5, (w + 4) // 5), generator=g)
    label = coarse.repeat_interleave(5, 2).repeat_interleave(5, 3)[:, 0, :h, :w].clone()
    noise = torch.rand(n, h, w, generator=g) < 0.05
    label[noise] = torch.randint(0, max(c, 2), (int(noise.sum()), ), generator=g)
    if ignored:
        label[:, h // 2:h // 2 + 3, w // 3:w // 3 + 4] = 255
        label[0, 0, :2] = 255  # on the frame
    return label


def both(fn_ref, fn_new, logits, *args, seed=0, **kwargs):
    """Value and gradient (w.r.t. the logits) of both implementations, each
    after the same seed."""
    out = []
    for fn in (fn_ref, fn_new):
        x = logits.clone().requires_grad_(True)
        torch.manual_seed(seed)
        value = fn(x, *args, **kwargs)
        grad, = torch.autograd.grad(value * 1.7, x)
        out.append((value.detach(), grad))
    return out


@pytest.fixture(params=['cpu_paths', 'cuda_paths'])
def code_path(request, monkeypatch):
    """Both filter forms: channels repeated for one output each (CPU) and
    several outputs per channel with one norm pass (CUDA), run here."""
    if request.param == 'cuda_paths':
        monkeypatch.setattr(dual_task, '_cuda_paths', lambda x: True)
    return request.param


@pytest.mark.parametrize('case', DUAL_CASES)
def test_dual_task_loss_equals_the_replaced_implementation(case, code_path):
    n, c, h, w, sigma, tau, ignored, weighted, size = case
    g = torch.Generator().manual_seed(c * 100 + h)
    logits = torch.randn(n, c, *(size or (h, w)), generator=g, dtype=torch.float64) * 3
    label = random_labels(n, c, h, w, ignored, seed=h)
    weight = torch.rand(n, h, w, generator=g, dtype=torch.float64) if weighted else None
    new = DualTaskLoss(tau=tau, sigma=sigma, loss_weight=1.3)
    (v_ref, g_ref), (v_new, g_new) = both(
        lambda x: ref.dual_task_loss(x, label, weight=weight, tau=tau, sigma=sigma,
                                     loss_weight=1.3),
        lambda x: new(x, label, weight=weight), logits)
    assert v_ref > 0
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    assert g_ref.abs().max() > 0
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-15)


def test_dual_task_loss_other_ignore_index(code_path):
    logits = torch.randn(2, 3, 20, 22, dtype=torch.float64)
    label = random_labels(2, 3, 20, 22, True, seed=3)
    label[label == 255] = 7
    (v_ref, g_ref), (v_new, g_new) = both(
        lambda x: ref.dual_task_loss(x, label, ignore_index=7),
        lambda x: DualTaskLoss()(x, label, ignore_index=7), logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-15)


def test_gumbel_sample_keeps_the_random_stream():
    """Same seed, same sample as the replaced implementation (same uniform
    draws, same clamp), so seeded runs are unchanged."""
    logits = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    for tau in (0.5, 1.0, 2.0):
        torch.manual_seed(5)
        a = ref.gumbel_softmax(logits, tau)
        torch.manual_seed(5)
        b = dual_task.gumbel_softmax(logits, tau)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_boundary_magnitude_equals_the_replaced_one(code_path):
    maps = torch.rand(2, 3, 15, 26, dtype=torch.float64)
    for sigma in (0.0, 1.0, 2.0):
        torch.testing.assert_close(dual_task.boundary_magnitude(maps, sigma),
                                   ref.boundary_magnitude(maps, sigma), rtol=1e-12,
                                   atol=1e-14)


def test_dual_task_loss_under_bf16_autocast_is_finite_and_close():
    """bfloat16 logits (as an autocast decoder gives them) under autocast:
    computed in float32 like the float32 logits of the same values; the
    gradient comes back in bfloat16."""
    logits = (torch.randn(2, 6, 32, 40) * 3).bfloat16().float()
    label = random_labels(2, 6, 32, 40, True, seed=1)
    results = []
    for enabled in (False, True):
        x = (logits.bfloat16() if enabled else logits.clone()).requires_grad_(True)
        torch.manual_seed(0)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=enabled):
            value = DualTaskLoss()(x, label)
        value.backward()
        assert value.dtype == torch.float32 and x.grad.dtype == x.dtype
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
        results.append((value.detach(), x.grad.float()))
    assert results[0][0] > 0 and results[0][1].abs().max() > 0
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-2, atol=1e-7)


def test_dual_task_loss_keeps_no_fp32_copy_of_half_logits(code_path):
    """Half-precision logits: the only full-resolution tensor kept for the
    backward pass is the gradient, in half precision; the gradient is that
    of the float32 computation."""
    logits = (torch.randn(2, 4, 24, 28) * 3).half()
    label = random_labels(2, 4, 24, 28, True, seed=2)
    saved = []

    def pack(t):
        saved.append((tuple(t.shape), t.dtype))
        return t

    x = logits.clone().requires_grad_(True)
    torch.manual_seed(0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = DualTaskLoss()(x, label)
    value.backward()
    assert saved == [((2, 4, 24, 28), torch.float16)]
    assert x.grad.dtype == torch.float16
    y = logits.float().requires_grad_(True)
    torch.manual_seed(0)
    DualTaskLoss()(y, label).backward()
    torch.testing.assert_close(x.grad.float(), y.grad.half().float(), rtol=0, atol=0)


def test_dual_task_loss_without_grad_matches():
    logits = torch.randn(1, 3, 18, 21, dtype=torch.float64)
    label = random_labels(1, 3, 18, 21, True, seed=4)
    torch.manual_seed(0)
    with torch.no_grad():
        a = DualTaskLoss()(logits, label)
    torch.manual_seed(0)
    b = ref.dual_task_loss(logits, label)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('radius', [1, 2, 3])
def test_boundary_targets_equal_the_replaced_ones(radius):
    from mmgscnn.models.shape_stream import boundary_target, label_boundaries
    for seed in range(4):
        label = random_labels(2, 5, 19, 26, True, seed=seed)
        label[1, -3:, -2:] = 255  # an ignored corner
        new, old = boundary_target(label, 255, radius), ref.boundary_target(label, 255, radius)
        assert new[0].dtype == old[0].dtype and new[1].dtype == old[1].dtype
        assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
        assert old[0].sum() > 0 and not old[1].all()
        new, old = label_boundaries(label, 255, radius), ref.label_boundaries(label, 255, radius)
        assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])
        edge = (torch.rand(2, 1, 19, 26) > 0.6).to(torch.uint8)
        new = boundary_target(label, 255, radius, edge_map=edge)
        old = ref.boundary_target(label, 255, radius, edge_map=edge)
        assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


@pytest.mark.parametrize('ignore_index', [255, 7, 0])
def test_boundary_targets_with_extreme_labels_equal_the_replaced_ones(ignore_index):
    """Labels 0 and 2**24 - 1 side by side (the largest difference float32
    holds), the ignore index below, among and above the labels; float and
    bool targets."""
    from mmgscnn.models.shape_stream import boundary_target
    g = torch.Generator().manual_seed(ignore_index)
    values = torch.tensor([0, 2 ** 24 - 1, 7, 2 ** 23, 255, 1])
    label = values[torch.randint(0, 6, (2, 4, 5), generator=g)]
    label = label.repeat_interleave(4, 1).repeat_interleave(5, 2)[:, :15, :23].clone()
    label[0, 2:5, 3:6] = ignore_index
    for radius in (1, 2):
        old = ref.boundary_target(label, ignore_index, radius)
        assert old[0].sum() > 0 and not old[1].all()
        for dtype in (torch.float32, torch.bool, torch.float16):
            new = boundary_target(label, ignore_index, radius, dtype=dtype)
            assert new[0].dtype == dtype
            assert torch.equal(new[0], old[0].to(dtype)) and torch.equal(new[1], old[1])


@pytest.mark.parametrize('with_valid', [True, False])
def test_boundary_bce_equals_the_replaced_one(with_valid):
    from mmgscnn.models.losses import BoundaryBCELoss
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 1, 21, 18, generator=g, dtype=torch.float64) * 3
    target = (torch.rand(3, 1, 21, 18, generator=g) > 0.7).float()
    valid = torch.rand(3, 1, 21, 18, generator=g) > 0.2 if with_valid else None
    (v_ref, g_ref), (v_new, g_new) = both(
        lambda x: ref.boundary_bce_loss(x, target, valid, loss_weight=20.0),
        lambda x: BoundaryBCELoss(loss_weight=20.0)(x, target, valid), logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    assert g_ref.abs().max() > 0
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize('radius', [1, 2])
def test_boundary_bce_on_the_bool_masked_target_equals_the_replaced_one(radius):
    """boundary_target(dtype=torch.bool), and the head's float32 one, with
    the BCE told the target is masked (no threshold, no product, no
    conversion of the target) equal the float target of the replaced code,
    value and gradient;
    without target_masked a bool target is masked by valid as a float one."""
    from mmgscnn.models.losses import BoundaryBCELoss
    from mmgscnn.models.shape_stream import boundary_target
    label = random_labels(2, 5, 19, 26, True, seed=radius)
    label[1, -4:, -3:] = 255
    target, valid = boundary_target(label, 255, radius, dtype=torch.bool)
    assert target.dtype == torch.bool and not (target & ~valid).any()
    old_target, old_valid = ref.boundary_target(label, 255, radius)
    assert torch.equal(target.float(), old_target) and torch.equal(valid, old_valid)
    logits = torch.randn(2, 1, 19, 26, generator=torch.Generator().manual_seed(5),
                         dtype=torch.float64) * 3
    (v_ref, g_ref), (v_new, g_new) = both(
        lambda x: ref.boundary_bce_loss(x, old_target, old_valid, loss_weight=20.0),
        lambda x: BoundaryBCELoss(loss_weight=20.0)(x, target, valid, target_masked=True),
        logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    assert g_ref.abs().max() > 0
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-16)
    # the head's float target, told it is masked (class weights by lerp)
    target32, _ = boundary_target(label, 255, radius, dtype=torch.float32)
    assert torch.equal(target32, old_target)
    (_, _), (v_new, g_new) = both(
        lambda x: x.sum(),
        lambda x: BoundaryBCELoss(loss_weight=20.0)(x, target32, valid, target_masked=True),
        logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-16)
    # an unmasked bool target (True outside valid too) without the promise
    wide = target | ~valid
    (v_ref, _), (v_new, _) = both(
        lambda x: ref.boundary_bce_loss(x, wide.float(), valid, loss_weight=20.0),
        lambda x: BoundaryBCELoss(loss_weight=20.0)(x, wide, valid), logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)


def test_head_boundary_loss_path_is_two_passes_shorter():
    """The head's path (float32 target, told it is masked) against an
    unmasked float32 target (threshold and product: two passes more) and a
    masked bool target (its conversion: one more)."""
    from mmgscnn.benchmark.traffic import count_traffic
    from mmgscnn.models.losses import BoundaryBCELoss
    from mmgscnn.models.shape_stream import boundary_target
    label = random_labels(2, 5, 19, 26, True, seed=1)

    def passes(dtype, masked):
        logits = torch.randn(2, 1, 19, 26).requires_grad_(True)

        def step():
            t, v = boundary_target(label, 255, 1, dtype=dtype)
            BoundaryBCELoss()(logits, t, v, target_masked=masked).backward()
        return count_traffic(step, (19, 26), training=True)['passes_full_res']

    head = passes(torch.float32, True)
    assert passes(torch.float32, False) - head == 2
    assert passes(torch.bool, True) - head == 1


def test_boundary_bce_half_logits_keep_a_half_gradient():
    from mmgscnn.models.losses import BoundaryBCELoss
    logits = (torch.randn(2, 1, 16, 20) * 3).half()
    target = (torch.rand(2, 1, 16, 20) > 0.7).float()
    saved = []
    x = logits.clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t,
                                                  lambda t: t):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            value = BoundaryBCELoss()(x, target)
    value.backward()
    assert saved == [torch.float16] and x.grad.dtype == torch.float16
    y = logits.float().requires_grad_(True)
    ref_value = ref.boundary_bce_loss(y, target)
    ref_value.backward()
    assert torch.isfinite(value) and value.dtype == torch.float32
    torch.testing.assert_close(value, ref_value.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(x.grad.float(), y.grad.half().float(), rtol=1e-3, atol=1e-6)


ATTENTION_CASES = [
    # N, C, H, W, boundary logits size (None: from the labels), weighted, logits size
    (2, 5, 23, 31, (23, 31), False, None),
    (1, 1, 17, 20, (17, 20), False, None),      # binary head
    (3, 4, 20, 28, (10, 14), False, (5, 7)),    # both enlarged
    (2, 3, 19, 22, None, False, None),          # label boundaries, radius 2
    (2, 6, 18, 21, (18, 21), True, None),       # mmseg sampler weights
    (2, 3, 12, 14, 'none', False, None),        # nothing selected: 0
]


@pytest.mark.parametrize('case', ATTENTION_CASES)
def test_attention_loss_equals_the_replaced_one(case):
    from mmgscnn.models.losses import BoundaryAttentionLoss
    n, c, h, w, b_size, weighted, size = case
    g = torch.Generator().manual_seed(h * w)
    logits = torch.randn(n, c, *(size or (h, w)), generator=g, dtype=torch.float64) * 2
    label = random_labels(n, c, h, w, True, seed=h)
    if b_size is None:
        boundary = None
    elif b_size == 'none':
        boundary = torch.full((n, 1, h, w), -5.0, dtype=torch.float64)
    else:
        boundary = torch.randn(n, 1, *b_size, generator=g, dtype=torch.float64) * 2
    weight = torch.rand(n, h, w, generator=g, dtype=torch.float64) if weighted else None
    radius = 2
    new = BoundaryAttentionLoss(radius=radius, loss_weight=0.7)
    (v_ref, g_ref), (v_new, g_new) = both(
        lambda x: ref.attention_loss(x, label, weight=weight, boundary_logits=boundary,
                                     radius=radius, loss_weight=0.7),
        lambda x: new(x, label, weight=weight, boundary_logits=boundary), logits)
    torch.testing.assert_close(v_new, v_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_new, g_ref, rtol=1e-10, atol=1e-16)
    if b_size == 'none':
        assert v_new == 0 and g_new.abs().max() == 0
    else:
        assert v_ref > 0 and g_ref.abs().max() > 0


def test_attention_loss_half_logits_under_autocast():
    from mmgscnn.models.losses import BoundaryAttentionLoss
    logits = torch.randn(2, 4, 16, 20) * 2
    label = random_labels(2, 4, 16, 20, True, seed=9)
    boundary = torch.randn(2, 1, 16, 20) * 2
    x = logits.bfloat16().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        value = BoundaryAttentionLoss()(x, label, boundary_logits=boundary.bfloat16())
    value.backward()
    y = logits.bfloat16().float().requires_grad_(True)
    expected = ref.attention_loss(y, label, boundary_logits=boundary.bfloat16().float())
    expected.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad.float()).all()
    torch.testing.assert_close(value.float(), expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.float(), y.grad, rtol=1e-2, atol=1e-5)


def test_dual_task_loss_uses_shared_float32_logits():
    """Half logits with their float32 copy given: the same value and the
    same half gradient as without it; a wrong copy is refused."""
    logits = (torch.randn(2, 4, 20, 24) * 3).half()
    label = random_labels(2, 4, 20, 24, True, seed=6)
    grads = []
    for shared in (False, True):
        x = logits.clone().requires_grad_(True)
        torch.manual_seed(0)
        value = DualTaskLoss()(x, label, upcast_logits=x.float() if shared else None)
        value.backward()
        grads.append((value.detach(), x.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    with pytest.raises(ValueError, match='upcast_logits'):
        DualTaskLoss()(logits, label, upcast_logits=logits.float()[:, :2])


def test_head_skips_the_identity_resize_of_the_decoders_loss(monkeypatch):
    """GatedShapeHead hands the decoder's ``loss_by_feat`` logits already at
    the label size: mmseg's resize there is skipped (no identity
    interpolation is run), with the same losses and gradients as with it."""
    import contextlib

    import torch.nn.functional as F
    from mmseg.models.decode_heads import decode_head
    from mmseg.registry import MODELS

    from helpers import make_batch, tiny_model
    from mmgscnn.models.decode_heads import gated_shape_head

    model = MODELS.build(tiny_model('fcn'))
    model.init_weights()
    model.train()
    data = make_batch(model, 32, 48)
    original = decode_head.resize
    calls = []
    real_interpolate = F.interpolate

    def counting(input, size=None, *args, **kwargs):
        if size is not None and tuple(input.shape[-2:]) == tuple(size):
            calls.append(tuple(size))
        return real_interpolate(input, size, *args, **kwargs)

    monkeypatch.setattr(F, 'interpolate', counting)
    results = []
    for skip in (True, False):
        if not skip:
            monkeypatch.setattr(gated_shape_head, '_no_identity_resize',
                                contextlib.nullcontext)
        calls.clear()
        model.zero_grad()
        torch.manual_seed(0)
        losses = model(**data, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((losses, grads, list(calls)))
        assert decode_head.resize is original
    (skipped, g_skipped, c_skipped), (plain, g_plain, c_plain) = results
    assert c_skipped == [] and len(c_plain) >= 1
    assert skipped.keys() == plain.keys()
    for key in plain:
        torch.testing.assert_close(skipped[key], plain[key], rtol=0, atol=0)
    for a, b in zip(g_skipped, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_attention_loss_uses_shared_float32_logits():
    """Half logits with their float32 copy given: the same value and half
    gradient as without it; only the half gradient is kept for backward."""
    from mmgscnn.models.losses import BoundaryAttentionLoss
    logits = (torch.randn(2, 4, 20, 24) * 2).half()
    label = random_labels(2, 4, 20, 24, True, seed=7)
    boundary = torch.randn(2, 1, 20, 24)
    results = []
    for shared in (False, True):
        x = logits.clone().requires_grad_(True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
                lambda t: saved.append((tuple(t.shape), t.dtype)) or t, lambda t: t):
            value = BoundaryAttentionLoss()(x, label, boundary_logits=boundary,
                                            upcast_logits=x.float() if shared else None)
        value.backward()
        assert saved == [((2, 4, 20, 24), torch.float16)]
        results.append((value.detach(), x.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    with pytest.raises(ValueError, match='upcast_logits'):
        BoundaryAttentionLoss()(logits, label, upcast_logits=logits.double())


def test_head_losses_on_half_logits_keep_no_float32_copies():
    """GatedShapeHead.loss_by_feat on bfloat16 logits under autocast: our
    three losses equal those of the float32 logits of the same values, and
    they keep no float32 full-resolution tensor for backward (the only one
    left is mmseg's own cross-entropy's log-probabilities)."""
    from mmseg.registry import MODELS

    from helpers import make_batch, tiny_model

    model = MODELS.build(tiny_model('fcn'))
    model.train()
    data = make_batch(model, 32, 48)
    samples = data['data_samples']
    head = model.decode_head
    g = torch.Generator().manual_seed(0)
    seg = (torch.randn(2, head.num_classes, 32, 48, generator=g) * 2).bfloat16()
    boundary = torch.randn(2, 1, 32, 48, generator=g).bfloat16()
    results = []
    for half in (True, False):
        x = (seg if half else seg.float()).clone().requires_grad_(True)
        b = (boundary if half else boundary.float()).clone().requires_grad_(True)
        saved = []
        torch.manual_seed(0)
        with torch.autograd.graph.saved_tensors_hooks(
                lambda t: saved.append((tuple(t.shape), t.dtype, t.data_ptr())) or t,
                lambda t: t), torch.autocast('cpu', dtype=torch.bfloat16, enabled=half):
            losses = head.loss_by_feat(x, b, samples)
        ours = {k: v for k, v in losses.items()
                if k in ('loss_boundary', 'loss_attention', 'loss_dual_task')}
        assert len(ours) == 3 and all(torch.isfinite(v) for v in ours.values())
        sum(ours.values()).backward()
        assert torch.isfinite(x.grad.float()).all() and torch.isfinite(b.grad.float()).all()
        results.append((ours, saved))
    (half_losses, half_saved), (full_losses, _) = results
    for key in full_losses:
        torch.testing.assert_close(half_losses[key].float(), full_losses[key],
                                   rtol=1e-5, atol=1e-6)
    full_res32 = {s for s in half_saved if s[1] == torch.float32 and s[0][-2:] == (32, 48)}
    assert [s[:2] for s in full_res32] == [((2, head.num_classes, 32, 48), torch.float32)]


def test_traffic_proxy_counts_the_dual_task_cuda_paths():
    from mmgscnn.benchmark.traffic import cuda_code_paths
    x = torch.zeros(1)
    assert not dual_task._cuda_paths(x)
    with cuda_code_paths():
        assert dual_task._cuda_paths(x)
    assert not dual_task._cuda_paths(x)


@pytest.mark.parametrize('autocast', [False, True])
def test_decoder_cross_entropy_keeping_its_log_probs_is_unchanged(autocast):
    """mmseg's CrossEntropyLoss (class weights, per-pixel weights, ignored
    pixels) inside ``_shared_log_softmax``: bitwise the same value and
    gradient as outside it, in float32 and on bfloat16 logits under
    autocast; the kept log-probabilities are the float32 log-softmax of
    those logits, and only the logits named are kept."""
    from mmseg.models.losses import CrossEntropyLoss, cross_entropy_loss

    from mmgscnn.models.decode_heads.gated_shape_head import _shared_log_softmax
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 12, 14, generator=g) * 3
    if autocast:
        logits = logits.bfloat16()
    label = random_labels(2, 4, 12, 14, True, seed=3)
    pixel_weight = torch.rand(2, 12, 14, generator=g)
    loss = CrossEntropyLoss(loss_weight=0.8, avg_non_ignore=True)
    # (mmseg's class weights fail on ignored pixels: none there)
    weighted = CrossEntropyLoss(class_weight=[1.0, 2.0, 0.5, 1.5])
    results = []
    for keep in (False, True):
        x = logits.clone().requires_grad_(True)
        other = logits.clone()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast), \
                _shared_log_softmax(x, keep) as keeping:
            value = weighted(x, label.clamp(max=3), ignore_index=255)  # kept: its weights
            value = value + loss(x, label, weight=pixel_weight, ignore_index=255)
            loss(other, label, ignore_index=255)  # another tensor: not kept
        grad, = torch.autograd.grad(value * 1.3, x)
        results.append((value.detach(), grad, keeping))
        assert cross_entropy_loss.F is torch.nn.functional
    (v_plain, g_plain, none), (v_kept, g_kept, keeping) = results
    assert none is None and v_plain.dtype == torch.float32
    assert torch.equal(v_kept, v_plain) and torch.equal(g_kept, g_plain)
    expected = torch.log_softmax(logits.float(), 1)
    assert keeping.log_probs.dtype == torch.float32
    torch.testing.assert_close(keeping.log_probs.detach(), expected, rtol=0, atol=0)


def test_attention_loss_on_shared_log_probs_equals_its_own():
    """``log_probs=log_softmax(logits)`` (float64, with grad): the same value
    and the same gradient w.r.t. the logits as the loss's own log-softmax;
    zero when no pixel is selected; wrong log_probs are refused."""
    from mmgscnn.models.losses import BoundaryAttentionLoss
    g = torch.Generator().manual_seed(5)
    n, c, h, w = 2, 5, 19, 23
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2
    label = random_labels(n, c, h, w, True, seed=5)
    loss = BoundaryAttentionLoss(loss_weight=0.7)
    for boundary in (torch.randn(n, 1, h, w, generator=g, dtype=torch.float64) * 2,
                     torch.full((n, 1, h, w), -5.0, dtype=torch.float64)):
        (v_own, g_own), (v_shared, g_shared) = both(
            lambda x: loss(x, label, boundary_logits=boundary),
            lambda x: loss(x, label, boundary_logits=boundary,
                           log_probs=torch.log_softmax(x, 1)), logits)
        torch.testing.assert_close(v_shared, v_own, rtol=1e-14, atol=0)
        torch.testing.assert_close(g_shared, g_own, rtol=1e-12, atol=1e-17)
        assert (v_own > 0) == (boundary.max() > 0)
    # one selected pixel: the mean over one pixel is its cross-entropy
    boundary = torch.full((n, 1, h, w), -5.0, dtype=torch.float64)
    boundary[1, 0, 3, 4] = 5.0
    label[1, 3, 4] = 2
    x = logits.clone().requires_grad_(True)
    value = loss(x, label, boundary_logits=boundary, log_probs=torch.log_softmax(x, 1))
    expected = -0.7 * torch.log_softmax(logits[1, :, 3, 4], 0)[2]
    torch.testing.assert_close(value.detach(), expected, rtol=1e-14, atol=0)
    # two classes are enough
    (v_own, g_own), (v_shared, g_shared) = both(
        lambda x: loss(x, label.clamp(max=1), boundary_logits=boundary),
        lambda x: loss(x, label.clamp(max=1), boundary_logits=boundary,
                       log_probs=torch.log_softmax(x, 1)), logits[:, :2])
    torch.testing.assert_close(v_shared, v_own, rtol=1e-14, atol=0)
    torch.testing.assert_close(g_shared, g_own, rtol=1e-12, atol=1e-17)
    log_probs = torch.log_softmax(logits, 1)
    alone = ('BoundaryAttentionLoss takes log_probs without weight and upcast_logits; '
             'leave log_probs out to use them')
    shape = ('BoundaryAttentionLoss log_probs must be log_softmax(seg_logits) (2 or more '
             'classes) in torch.float64 at the label size (2, 19, 23), got ')
    for kwargs, match in [(dict(weight=torch.ones(n, h, w, dtype=torch.float64)), alone),
                          (dict(upcast_logits=logits.clone()), alone),
                          (dict(log_probs=log_probs.float()), shape),
                          (dict(log_probs=log_probs[:, :3]), shape)]:
        kwargs.setdefault('log_probs', log_probs)
        with pytest.raises(ValueError, match='^' + re.escape(match)):
            loss(logits, label, **kwargs)
    with pytest.raises(ValueError, match='2 or more'):
        loss(logits[:, :1], label, log_probs=log_probs[:, :1])


def test_head_attention_loss_shares_the_decoders_log_softmax(monkeypatch):
    """GatedShapeHead: the attention loss reads the decoder's cross-entropy's
    log-probabilities. Float64 model: the same losses and parameter
    gradients as with its own log-softmax, and one full-resolution
    log-softmax and one log-softmax backward fewer."""
    import contextlib

    from torch.utils._python_dispatch import TorchDispatchMode

    from helpers import make_batch, tiny_model
    from mmseg.registry import MODELS
    from mmgscnn.models.decode_heads import gated_shape_head

    model = MODELS.build(tiny_model('fcn'))
    model.init_weights()
    model.double().train()
    data = make_batch(model, 32, 48)
    data['inputs'] = data['inputs'].double()
    with torch.no_grad():  # about half the pixels pass the attention threshold
        boundary = model.decode_head.forward_with_boundary(model.extract_feat(
            data['inputs']))[1]
    model.decode_head.loss_attention.threshold = float(torch.sigmoid(boundary).median())
    full = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if (func.overloadpacket.__name__ in ('_log_softmax', '_log_softmax_backward_data')
                    and out.shape[-2:] == (32, 48)):
                full.append(func.overloadpacket.__name__)
            return out

    results = []
    for share in (True, False):
        if not share:
            monkeypatch.setattr(gated_shape_head, '_shared_log_softmax',
                                lambda logits, enabled=True: contextlib.nullcontext())
        model.zero_grad()
        full.clear()
        torch.manual_seed(0)
        with Count():
            losses = model(**data, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((losses, grads, sorted(full)))
    (shared, g_shared, n_shared), (own, g_own, n_own) = results
    assert own['decode.loss_attention'] > 0
    for key in own:
        torch.testing.assert_close(shared[key], own[key], rtol=1e-13, atol=0, msg=key)
    for a, b in zip(g_shared, g_own):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-15)
    assert n_own == ['_log_softmax'] * 2 + ['_log_softmax_backward_data'] * 2
    assert n_shared == ['_log_softmax', '_log_softmax_backward_data']


def test_cross_entropy_keeping_log_probs_falls_back_and_delegates():
    """The stand-in for ``torch.nn.functional``: other functions are
    torch's; ``cross_entropy`` keeps the log-probabilities of the named
    logits only (2-D to 4-D, class-index targets, the first call) and gives
    ``F.cross_entropy``'s values in every case, legacy arguments, label
    smoothing and probability targets included."""
    import warnings

    import torch.nn.functional as F

    from mmgscnn.models.decode_heads.gated_shape_head import _CrossEntropyKeepingLogProbs
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (3, 5, 6), generator=g)
    probs = torch.softmax(torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64), 1)
    keeping = _CrossEntropyKeepingLogProbs(x, F)
    assert keeping.log_softmax is F.log_softmax and keeping.one_hot is F.one_hot
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # size_average and reduce are deprecated
        w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=torch.float64)
        for kwargs in (dict(size_average=False), dict(reduce=False), dict(label_smoothing=0.1),
                       dict(label_smoothing=0.1, weight=w)):
            torch.testing.assert_close(keeping.cross_entropy(x, t, **kwargs),
                                       F.cross_entropy(x, t, **kwargs), rtol=0, atol=0)
            assert keeping.log_probs is None, kwargs
    torch.testing.assert_close(keeping.cross_entropy(x, probs), F.cross_entropy(x, probs),
                               rtol=0, atol=0)
    other = x.clone()
    torch.testing.assert_close(keeping.cross_entropy(other, t), F.cross_entropy(x, t),
                               rtol=0, atol=0)
    assert keeping.log_probs is None
    # the named logits: kept, with the default reduction ('mean')
    torch.testing.assert_close(keeping.cross_entropy(x, t), F.cross_entropy(x, t),
                               rtol=0, atol=0)
    first = keeping.log_probs
    torch.testing.assert_close(first, torch.log_softmax(x, 1), rtol=0, atol=0)
    keeping.cross_entropy(x, t, reduction='sum')
    assert keeping.log_probs is first  # the first kept
    for shape, target_shape in (((5, 4), (5, )), ((3, 4, 7), (3, 7))):
        y = torch.randn(*shape, generator=g, dtype=torch.float64)
        u = torch.randint(0, 4, target_shape, generator=g)
        keeping = _CrossEntropyKeepingLogProbs(y, F)
        torch.testing.assert_close(keeping.cross_entropy(y, u, reduction='none'),
                                   F.cross_entropy(y, u, reduction='none'), rtol=0, atol=0)
        torch.testing.assert_close(keeping.log_probs, torch.log_softmax(y, 1), rtol=0, atol=0)
    one = torch.randn(4, generator=g, dtype=torch.float64)  # one sample, no batch
    keeping = _CrossEntropyKeepingLogProbs(one, F)
    torch.testing.assert_close(keeping.cross_entropy(one, t[0, 0, 0]),
                               F.cross_entropy(one, t[0, 0, 0]), rtol=0, atol=0)
    assert keeping.log_probs is None


def test_head_passes_the_log_probs_to_its_own_attention_loss_only():
    """shape_losses with log-probabilities of other logits: our attention
    loss (2 and 5 classes) computes on them, so its value is that of the
    other logits; a one-channel head and another attention loss type get
    none (and no upcast_logits: a loss without those keywords runs)."""
    from mmseg.registry import MODELS

    from helpers import tiny_model

    model = MODELS.build(tiny_model('fcn', head_kwargs=dict(loss_boundary=None,
                                                            loss_dual_task=None)))
    head = model.decode_head
    g = torch.Generator().manual_seed(8)
    boundary = torch.randn(2, 1, 12, 14, generator=g)
    for c in (2, 5):
        label = torch.randint(0, c, (2, 12, 14), generator=g)
        seg = torch.randn(2, c, 12, 14, generator=g)
        other = torch.randn(2, c, 12, 14, generator=g)
        got = head.shape_losses(seg, boundary, label, log_probs=torch.log_softmax(other, 1))
        expected = head.loss_attention(other, label, boundary_logits=boundary)
        torch.testing.assert_close(got['loss_attention'], expected, rtol=1e-6, atol=0)
        assert not torch.allclose(expected, head.loss_attention(seg, label,
                                                                 boundary_logits=boundary))
    seg1 = torch.randn(2, 1, 12, 14, generator=g)
    label1 = torch.randint(0, 2, (2, 12, 14), generator=g)
    got = head.shape_losses(seg1, boundary, label1, log_probs=torch.zeros_like(seg1))
    torch.testing.assert_close(got['loss_attention'], head.loss_attention(
        seg1, label1, boundary_logits=boundary))

    class Plain(torch.nn.Module):  # no upcast_logits, no log_probs, no **kwargs
        loss_name = 'loss_attention'

        def forward(self, seg_logits, seg_label, ignore_index=255, boundary_logits=None):
            return seg_logits.float().mean()

    head.loss_attention = Plain()
    seg = torch.randn(2, 5, 12, 14, generator=g)
    for half in (False, True):
        x = seg.bfloat16() if half else seg
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=half):
            got = head.shape_losses(x, boundary, label, log_probs=torch.log_softmax(seg, 1))
        torch.testing.assert_close(got['loss_attention'], x.float().mean())
