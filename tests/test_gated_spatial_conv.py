"""mmgscnn.models.shape_stream.gated_spatial_conv: the gated convolution
layer (GCL)."""
import pytest
import torch

from mmgscnn.models import GatedSpatialConv


def test_gated_spatial_conv_shape_and_gradients():
    gcl = GatedSpatialConv(6, 5, kernel_size=3)
    x = torch.randn(2, 6, 9, 11, requires_grad=True)
    gate = torch.randn(2, 1, 9, 11, requires_grad=True)
    out = gcl(x, gate)
    assert out.shape == (2, 5, 9, 11)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and gate.grad.abs().sum() > 0


def test_gated_spatial_conv_alpha_zero_is_plain_conv():
    gcl = GatedSpatialConv(4, 3).eval()
    # Last norm of the attention net: weight 0, bias -inf -> alpha = sigmoid(-inf) = 0.
    norm = gcl.attention[2].norm
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.fill_(float('-inf'))
    x, gate = torch.randn(2, 4, 5, 7), torch.randn(2, 1, 5, 7)
    assert torch.equal(gcl.attention(torch.cat([x, gate], 1)), torch.zeros(2, 1, 5, 7))
    torch.testing.assert_close(gcl(x, gate), gcl.conv(x))
    # and a non-zero alpha does change the output
    with torch.no_grad():
        norm.bias.fill_(3.0)
    assert not torch.allclose(gcl(x, gate), gcl.conv(x))


def test_gated_spatial_conv_rejects_bad_gate():
    with pytest.raises(ValueError, match='gate must be'):
        GatedSpatialConv(4, 4)(torch.randn(1, 4, 5, 5), torch.randn(1, 2, 5, 5))


# ------------------------------------------------ values and gradients, by path
# The reference is the GCL's formula written out in float64 with torch.nn.functional,
# reading only the module's parameter values (eval-mode batch norms):
#   z = cat(x, extra, gate); alpha = sigmoid(bn2(conv(relu(conv(bn1(z)) + b))))
#   out = conv(cat(x, extra) * (1 + alpha))

def _gcl_reference(params, x, gate, extra, kernel_size):
    import torch.nn.functional as F

    def bn(t, prefix):
        shape = (1, -1, 1, 1)
        return ((t - params[prefix + 'running_mean'].view(shape))
                / torch.sqrt(params[prefix + 'running_var'].view(shape) + 1e-5)
                * params[prefix + 'weight'].view(shape) + params[prefix + 'bias'].view(shape))

    xs = x if extra is None else torch.cat([x, extra], 1)
    z = torch.cat([xs, gate], 1)
    hidden = F.relu(F.conv2d(bn(z, 'attention.0.'), params['attention.1.conv.weight'],
                             params['attention.1.conv.bias']))
    alpha = torch.sigmoid(bn(F.conv2d(hidden, params['attention.2.conv.weight']),
                             'attention.2.bn.'))
    return F.conv2d(xs * (1 + alpha), params['conv.weight'], padding=kernel_size // 2)


def _random_gcl(c_x, c_extra, out, kernel_size, seed, **kwargs):
    """An eval-mode GCL with random weights and batch-norm statistics, so
    that alpha spreads over (0, 1)."""
    torch.manual_seed(seed)
    gcl = GatedSpatialConv(c_x + c_extra, out, kernel_size, **kwargs).eval()
    with torch.no_grad():
        for name, t in gcl.state_dict().items():
            if name.endswith('running_var'):
                t.uniform_(0.5, 2.0)
            elif name.endswith('running_mean') or name.endswith('bias'):
                t.uniform_(-0.5, 0.5)
            elif t.is_floating_point():
                t.normal_(0, 0.7)
    return gcl


def _run_both(gcl, kernel_size, c_x, c_extra, inputs_grad=True, seed=0):
    """Output and gradients of a random weighted sum of the output: the module
    (float32) and the float64 reference. -> (module, reference), each a
    dict name -> tensor (None where no gradient)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_x, 5, 6, generator=g)
    gate = torch.randn(2, 1, 5, 6, generator=g) * 2
    extra = torch.randn(2, c_extra, 5, 6, generator=g) if c_extra else None
    weights = torch.randn(2, gcl.conv.out_channels, 5, 6, generator=g, dtype=torch.float64)
    named = dict(x=x, gate=gate, extra=extra)
    for p in gcl.parameters():
        p.grad = None
    results = []
    for ref in (False, True):
        ins = {k: None if v is None else
               (v.double() if ref else v.clone()).requires_grad_(inputs_grad)
               for k, v in named.items()}
        params = {k: (v.detach().double().requires_grad_(v.requires_grad) if ref else v)
                  for k, v in gcl.named_parameters()}
        if ref:
            params.update({k: v.double() for k, v in gcl.named_buffers()})
            out = _gcl_reference(params, ins['x'], ins['gate'], ins['extra'], kernel_size)
        else:
            out = gcl(ins['x'], ins['gate'], ins['extra'])
        (out.double() * weights).sum().backward()
        got = dict(out=out.detach().double())
        got.update({k: None if v is None or v.grad is None else v.grad.double()
                    for k, v in ins.items()})
        got.update({k: None if v.grad is None else v.grad.double()
                    for k, v in (params.items() if ref else gcl.named_parameters())
                    if k in dict(gcl.named_parameters())})
        results.append(got)
    return results


def _assert_same(got, expected, rtol=1e-5, atol=1e-5):
    assert got.keys() == expected.keys()
    for k in expected:
        if expected[k] is None:
            assert got[k] is None, k
        else:
            assert got[k] is not None, k
            torch.testing.assert_close(got[k], expected[k], rtol=rtol, atol=atol, msg=k)


@pytest.mark.parametrize('kernel_size', [1, 3])
@pytest.mark.parametrize('c_extra', [0, 2])
@pytest.mark.parametrize('conv_cfg', [None, dict(type='Conv2dAdaptivePadding')],
                         ids=['conv', 'adaptive'])
def test_gcl_values_and_gradients_equal_the_float64_formula(kernel_size, c_extra, conv_cfg):
    """Output and every gradient (x, gate, extra, each parameter), with the
    stem's extra features or without, plain 1x1 (fused gating), 3x3, and a
    convolution of another type (the unfused path)."""
    gcl = _random_gcl(3, c_extra, 5, kernel_size, seed=kernel_size + c_extra,
                      conv_cfg=conv_cfg)
    got, expected = _run_both(gcl, kernel_size, 3, c_extra)
    _assert_same(got, expected)
    assert expected['gate'].abs().max() > 1e-3  # the gate matters


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_gcl_gradients_with_frozen_parts(kernel_size):
    """A frozen output convolution (its weight needs no gradient), and
    inputs without gradient with a frozen attention (only the output
    convolution learns): the gradients that exist equal the formula's."""
    gcl = _random_gcl(3, 2, 5, kernel_size, seed=11)
    gcl.conv.weight.requires_grad_(False)
    got, expected = _run_both(gcl, kernel_size, 3, 2)
    _assert_same(got, expected)
    assert got['conv.weight'] is None and got['x'] is not None
    gcl.conv.weight.requires_grad_(True)
    for p in gcl.attention.parameters():
        p.requires_grad_(False)
    got, expected = _run_both(gcl, kernel_size, 3, 2, inputs_grad=False)
    _assert_same(got, expected)
    assert got['conv.weight'] is not None and got['x'] is None


def test_gating_values_and_gradients_by_hand():
    """gating(y, alpha) = y * (1 + alpha), alpha broadcast over channels:
    d/dy = g * (1 + alpha), d/dalpha = sum over channels of g * y; with
    either input alone requiring grad, and with none."""
    from mmgscnn.models.shape_stream.gated_spatial_conv import gating
    g = torch.Generator().manual_seed(3)
    y0 = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    a0 = torch.rand(2, 1, 4, 5, generator=g, dtype=torch.float64)
    w = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    for y_grad, a_grad in ((True, True), (True, False), (False, True), (False, False)):
        y, a = y0.clone().requires_grad_(y_grad), a0.clone().requires_grad_(a_grad)
        out = gating(y, a)
        torch.testing.assert_close(out.detach(), y0 + y0 * a0, rtol=0, atol=1e-15)
        if y_grad or a_grad:
            (out * w).sum().backward()
        assert (y.grad is None) != y_grad and (a.grad is None) != a_grad
        if y_grad:
            torch.testing.assert_close(y.grad, w * (1 + a0), rtol=1e-12, atol=1e-12)
        if a_grad:
            torch.testing.assert_close(a.grad, (w * y0).sum(1, keepdim=True),
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('kernel_size', [1, 3])
def test_gcl_under_cpu_autocast_runs_in_bfloat16(kernel_size):
    """Under autocast the output has autocast's dtype (the 1x1 fused gating
    casts its input and weight as conv2d would); values and gradients equal
    the float64 formula to bfloat16 precision (gradients to 20 % of their
    largest value: dtype slips fail or give float32 outputs here; the
    float32 tests pin the values)."""
    gcl = _random_gcl(3, 2, 5, kernel_size, seed=21)
    g = torch.Generator().manual_seed(4)
    x, extra = torch.randn(2, 3, 5, 6, generator=g), torch.randn(2, 2, 5, 6, generator=g)
    gate = torch.randn(2, 1, 5, 6, generator=g) * 2
    xs = [t.clone().requires_grad_(True) for t in (x, gate, extra)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = gcl(*xs)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    params = {k: v.detach().double().requires_grad_(True) for k, v in gcl.named_parameters()}
    params.update({k: v.double() for k, v in gcl.named_buffers()})
    rs = [t.double().requires_grad_(True) for t in (x, gate, extra)]
    expected = _gcl_reference(params, rs[0], rs[1], rs[2], kernel_size)
    expected.sum().backward()
    scale = expected.abs().max()
    assert (out.double() - expected).abs().max() < 0.05 * scale
    for got, ref in [(t.grad, r.grad) for t, r in zip(xs, rs)] + \
            [(p.grad, params[k].grad) for k, p in gcl.named_parameters()]:
        assert got.dtype == torch.float32
        assert (got.double() - ref).abs().max() < 0.2 * ref.abs().max() + 1e-3


def test_gcl_1x1_backward_keeps_z_not_the_product():
    """Plain 1x1 GCL with grad: the fused gating, whose backward pass
    recomputes conv(z) rather than keeping it: nothing saved for the
    backward pass has the output's width (5 channels) at full resolution,
    where the unfused form keeps conv(x) (5 channels)."""
    gcl = _random_gcl(3, 0, 5, 1, seed=31)
    x, gate = torch.randn(2, 3, 5, 6), torch.randn(2, 1, 5, 6)
    widths = []

    def pack(t):
        widths.append(tuple(t.shape))
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = gcl(x.requires_grad_(True), gate)
    assert out.grad_fn.name() == '_ConvGatingBackward'
    assert (2, 5, 5, 6) not in widths and (2, 4, 5, 6) in widths
    with torch.no_grad():
        torch.testing.assert_close(gcl(x, gate), out.detach())
