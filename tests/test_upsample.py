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
