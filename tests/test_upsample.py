"""mmgscnn.models.utils.upsample: bilinear enlargement without atomics."""
import pytest
import torch
import torch.nn.functional as F

from mmgscnn.models.utils import enlarge_bilinear, upsample_bilinear


@pytest.mark.parametrize('shape,factors', [((3, 5), (4, 4)), ((1, 1), (4, 8)),
                                           ((4, 4), (8, 8)), ((5, 7), (1, 3)),
                                           ((2, 3), (8, 2)), ((6, 2), (2, 1))])
def test_enlargement_equals_interpolate_values_and_gradients(shape, factors):
    x = torch.randn(2, 3, *shape, dtype=torch.float64, requires_grad=True)
    size = (shape[0] * factors[0], shape[1] * factors[1])
    ours = enlarge_bilinear(x, *factors)
    ref = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    (g_ours, ), (g_ref, ) = (torch.autograd.grad(y, x, g) for y in (ours, ref))
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


def test_other_cases_fall_back_to_interpolate():
    x = torch.randn(1, 2, 6, 8)
    for size, ac in (((9, 12), False), ((3, 4), False), ((12, 16), True), ((6, 8), False)):
        ref = F.interpolate(x, size=size, mode='bilinear', align_corners=ac)
        torch.testing.assert_close(upsample_bilinear(x, size, ac), ref)


def test_channels_last_input_stays_channels_last():
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last).requires_grad_(True)
    y = enlarge_bilinear(x, 4, 2)
    assert y.is_contiguous(memory_format=torch.channels_last)
    ref = F.interpolate(x, size=(12, 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    (g_ours, ), (g_ref, ) = (torch.autograd.grad(t, x, g) for t in (y, ref))
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize('s,taps', [
    (1, [1.0]),
    (2, [1 / 4, 3 / 4, 3 / 4, 1 / 4]),
    (3, [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3]),
    (4, [1 / 8, 3 / 8, 5 / 8, 7 / 8, 7 / 8, 5 / 8, 3 / 8, 1 / 8])])
def test_tent_taps_by_hand(s, taps):
    # output pixels at (j + 0.5) / s - 0.5 source pixels; weight 1 - |distance|
    from mmgscnn.models.utils.upsample import tent_taps
    assert tent_taps(s) == pytest.approx(taps, abs=1e-15)


def test_weights_built_afresh_are_exact_cached_and_not_inference_tensors(monkeypatch):
    """With an empty cache (mutation runs fork after the cache is filled),
    the weight is rebuilt: float64 values and gradients equal
    F.interpolate's, then the same tensor is served from the cache."""
    from mmgscnn.models.utils import constants, upsample
    monkeypatch.setattr(constants, '_CACHE', {})
    for shape, factors in (((3, 4), (3, 2)), ((2, 5), (4, 3))):
        x = torch.randn(1, 2, *shape, dtype=torch.float64, requires_grad=True)
        size = (shape[0] * factors[0], shape[1] * factors[1])
        ours, ref = enlarge_bilinear(x, *factors), F.interpolate(x, size=size, mode='bilinear')
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-13)
        for g_ours, g_ref in zip(*(torch.autograd.grad(y, x, torch.ones_like(ref))
                                   for y in (ours, ref))):
            torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-13)
    w = upsample._tent_weight(3, 2, 2, torch.device('cpu'), torch.float64)
    assert w.shape == (2, 1, 5, 4) and not w.is_inference() and not w.requires_grad
    assert upsample._tent_weight(3, 2, 2, torch.device('cpu'), torch.float64) is w
    assert constants._CACHE[('tent_weight', 3, 2, 2, torch.device('cpu'), torch.float64)] is w
    x = torch.randn(1, 2, 3, 4)  # float32: a weight of its own, in float32
    assert upsample._tent_weight(2, 2, 2, x.device, x.dtype).dtype == torch.float32
    torch.testing.assert_close(enlarge_bilinear(x, 2, 2), F.interpolate(x, scale_factor=2,
                                                                        mode='bilinear'))


def test_cuda_path_enlarges_exactly_when_both_factors_are_integers(monkeypatch):
    from mmgscnn.models.utils import upsample
    calls = []
    monkeypatch.setattr(upsample, 'enlarge_bilinear',
                        lambda *a: calls.append(a[1:]) or enlarge_bilinear(*a))
    monkeypatch.setattr(upsample, '_blends_pay_off', lambda t: True)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    for size, expected in (((4, 8), (1, 2)), ((8, 4), (2, 1)), ((8, 6), None), ((6, 8), None)):
        calls.clear()
        y = upsample_bilinear(x, size)
        assert calls == ([expected] if expected else [])
        torch.testing.assert_close(y, F.interpolate(x, size=size, mode='bilinear'),
                                   rtol=0, atol=1e-12)
