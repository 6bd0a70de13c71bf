"""shape_head.compile: the shape stream and our losses under torch.compile
(Inductor, on the CPU) give the eager model's outputs, losses and gradients;
checkpoints move between compiled and eager models; bad settings are named."""
import copy

import pytest
import torch
import torch._inductor.config as inductor_config
from helpers import make_batch, tiny_model
from mmseg.registry import MODELS

from mmgscnn.models.decode_heads.gated_shape_head import GatedShapeHead
from mmgscnn.models.losses import dual_task_loss
from mmgscnn.models.utils.regional_compile import COMPILE_DEFAULTS, compile_settings
from mmgscnn.utils.config_errors import ConfigError, UnknownKeyError

# two gates instead of three: fewer kernels to compile (the test's cost is
# Inductor's compilation, about a minute on one CPU core)
STREAM = dict(gate_indices=(2, 3), channels=(8, 8, 4))
# a threshold the untrained stream passes, so the attention loss is not 0
HEAD = dict(loss_attention=dict(type='BoundaryAttentionLoss', threshold=0.3))


def build(compile=None, **head):
    torch.manual_seed(0)
    kwargs = dict(HEAD, **head)
    if compile is not None:
        kwargs['compile'] = compile
    model = MODELS.build(tiny_model('fcn', shape_stream=STREAM, head_kwargs=kwargs,
                                    dropout_ratio=0))
    model.init_weights()
    return model


def test_settings_defaults_and_errors():
    assert compile_settings(None) is None and compile_settings(False) is None
    assert compile_settings(True) == compile_settings({}) == COMPILE_DEFAULTS
    assert compile_settings(dict(stream=False, losses=False)) is None
    assert compile_settings(dict(losses=False, mode='max-autotune-no-cudagraphs')) == dict(
        stream=True, losses=False, mode='max-autotune-no-cudagraphs', dynamic=None)
    with pytest.raises(UnknownKeyError, match=r"shape_head.compile: unknown key 'mdoe'.*"
                       r"did you mean 'mode'"):
        compile_settings(dict(mdoe='default'))
    with pytest.raises(ConfigError, match=r"mode must be one of .*'reduce-overhead'.*"
                       r"CUDA graphs.*got 'fast'"):
        compile_settings(dict(mode='fast'))
    with pytest.raises(ConfigError, match='stream must be True or False'):
        compile_settings(dict(stream='yes'))
    with pytest.raises(ConfigError, match='dynamic must be None'):
        compile_settings(dict(dynamic='auto'))
    with pytest.raises(ConfigError, match='must be a dict'):
        compile_settings('default')


def test_unknown_key_in_model_config_is_named():
    with pytest.raises(UnknownKeyError, match=r"unknown key 'loses'.*did you mean 'losses'"):
        build(compile=dict(loses=True))


def test_cuda_graph_mode_is_refused_off_cuda():
    model = build(compile=dict(mode='reduce-overhead'))
    data = make_batch(model, 32, 48)
    with pytest.raises(ConfigError, match=r"mode='reduce-overhead' captures CUDA graphs.*"
                       r"runs on cpu; use mode='default'"):
        model(**data, mode='loss')


def test_checkpoints_move_between_compiled_and_eager(tmp_path):
    compiled, eager = build(compile=dict()), build()
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert not any('_orig_mod' in k for k in compiled.state_dict())
    for src, dst in ((compiled, eager), (eager, compiled)):
        with torch.no_grad():
            for p in src.parameters():
                p.add_(torch.rand_like(p))
        torch.save(src.state_dict(), tmp_path / 'ckpt.pth')
        dst.load_state_dict(torch.load(tmp_path / 'ckpt.pth'), strict=True)
        for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
            assert torch.equal(a, b), k
    assert copy.deepcopy(compiled).decode_head.compile_settings == COMPILE_DEFAULTS


def _layout_free_gumbel_logits(logits, tau, eps=1e-6):
    """``gumbel_logits`` with uniform draws in the logical (N, C, H, W)
    order: ``rand_like`` follows the memory layout, which Inductor may
    choose differently (channels-last before a convolution), so the same
    seed would place the same numbers at other pixels."""
    u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device)
    return (logits - u.clamp(eps, 1 - eps).log().neg().log()) / tau


def _step(model, data):
    """One training forward and backward -> (losses, stream outputs, grads)."""
    model.train()
    model.zero_grad()
    torch.manual_seed(1)
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if k.startswith('decode.loss')).backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    feats = model.extract_feat(data['inputs'], [s.metainfo for s in data['data_samples']])
    with torch.no_grad():
        outputs = model.decode_head.shape_stream(feats, feats.image, feats.image_valid)
    return losses, outputs, grads


def test_compiled_step_equals_eager(monkeypatch, tmp_path):
    """Forward outputs of the stream, every loss and every gradient of a
    compiled model (stream and losses through Inductor) equal the eager
    model's within float32 rounding; then inference does too."""
    monkeypatch.setattr(dual_task_loss, 'gumbel_logits', _layout_free_gumbel_logits)
    torch._dynamo.reset()
    eager, compiled = build(), build(compile=dict(dynamic=False))
    compiled.load_state_dict(eager.state_dict())
    data = make_batch(eager, 32, 48)
    want = _step(eager, data)
    # fallback_random: Inductor draws through aten, the eager random stream
    with inductor_config.patch(fallback_random=True):
        got = _step(compiled, data)
    assert set(got[0]) == set(want[0]) and set(got[2]) == set(want[2])
    assert any(k.startswith('decode_head.shape_stream.') for k in got[2])
    for k in want[0]:
        assert float(want[0][k].detach()) != 0 or k == 'decode.acc_seg', k  # all losses active
        torch.testing.assert_close(got[0][k], want[0][k], msg=k)
    torch.testing.assert_close(got[1], want[1])
    for k in want[2]:
        torch.testing.assert_close(got[2][k], want[2][k], rtol=1e-4, atol=1e-6, msg=k)

    eager.eval()
    compiled.eval()
    with torch.no_grad():
        want = eager.predict(data['inputs'], data['data_samples'])
        got = compiled.predict(data['inputs'], data['data_samples'])
    for a, b in zip(got, want):
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)
        torch.testing.assert_close(a.pred_boundary.data, b.pred_boundary.data)


def test_regions_have_no_graph_break():
    """Dynamo traces each region whole, the losses' autograd Functions
    included (``torch._dynamo.explain``: tracing only, no compilation)."""
    model = build()
    model.train()
    data = make_batch(model, 32, 48)
    head = model.decode_head
    feats = model.extract_feat(data['inputs'], [s.metainfo for s in data['data_samples']])
    stream = torch._dynamo.explain(head.shape_stream)(feats, feats.image, feats.image_valid)
    assert (stream.graph_count, stream.graph_break_count) == (1, 0), stream.break_reasons
    logits, _ = head.shape_stream(feats, feats.image, feats.image_valid)
    label = head.decoder._stack_batch_gt(data['data_samples']).squeeze(1)
    seg = torch.randn(2, head.num_classes, *label.shape[-2:], requires_grad=True)
    losses = torch._dynamo.explain(GatedShapeHead.shape_losses)(head, seg, logits, label)
    assert (losses.graph_count, losses.graph_break_count) == (1, 0), losses.break_reasons
