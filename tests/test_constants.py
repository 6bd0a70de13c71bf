import torch

from mmgscnn.models.losses.dual_task_loss import _filter_bank
from mmgscnn.models.shape_stream.image_gradient import sobel_kernels
from mmgscnn.models.utils import constants
from mmgscnn.models.utils.constants import cached_constant, clear_constants


def test_built_once_per_key_served_until_cleared():
    calls = []

    def build():
        calls.append(1)
        return torch.arange(3.0)

    first = cached_constant(('test', 1), build)
    assert cached_constant(('test', 1), build) is first and len(calls) == 1
    other = cached_constant(('test', 2), build)
    assert other is not first and len(calls) == 2
    clear_constants()
    assert cached_constant(('test', 1), build) is not first and len(calls) == 3


def test_not_an_inference_tensor_nor_grad_when_first_built_in_inference_mode():
    w = torch.ones(2, requires_grad=True)
    with torch.inference_mode():
        value = cached_constant(('test', 'inference'), lambda: w * 2)
    assert not value.is_inference() and not value.requires_grad
    # usable in a training graph afterwards
    (value * w).sum().backward()
    torch.testing.assert_close(w.grad, torch.full((2, ), 2.0))


def test_built_afresh_while_compiling(monkeypatch):
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)
    a = cached_constant(('test', 'compiling'), lambda: torch.zeros(1))
    b = cached_constant(('test', 'compiling'), lambda: torch.zeros(1))
    assert a is not b and ('test', 'compiling') not in constants._CACHE


def test_filter_banks_are_cached_per_sigma_device_and_dtype():
    cpu = torch.device('cpu')
    s, d = sobel_kernels(1.0, cpu, torch.float64)
    assert sobel_kernels(1.0, 'cpu', torch.float64)[0] is s
    assert sobel_kernels(0.0, cpu, torch.float64)[0] is not s
    torch.testing.assert_close(sobel_kernels(0.0, cpu, torch.float32)[1],
                               torch.tensor([-1.0, 0.0, 1.0]))
    assert sobel_kernels(1.0, cpu, torch.float32)[0].dtype == torch.float32
    bank = _filter_bank(2, 1.0, cpu, torch.float64)
    assert _filter_bank(2, 1.0, cpu, torch.float64)[0] is bank[0]
    assert _filter_bank(3, 1.0, cpu, torch.float64)[0].shape[0] == 12
