"""mmgscnn.benchmark.measurement: timing, complexity, the methods text."""
import torch
from benchmark_helpers import write_tiny_configs

from mmgscnn.benchmark.benchmark_config import build_model, load_benchmark_config
from mmgscnn.benchmark.measurement import count_complexity, measure_training, methods, timed

CPU = torch.device('cpu')


def test_memory_counter_is_reset_after_the_warmup():
    calls = []
    times = timed(lambda: calls.append('step'), warmup=2, iters=3, device=CPU,
                  after_warmup=lambda: calls.append('reset'))
    assert calls == ['step', 'step', 'reset', 'step', 'step', 'step']
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_training_resets_the_peak_counter_and_keeps_the_cache(monkeypatch):
    """On CUDA (faked: every torch.cuda call recorded) only the peak-memory
    counter is reset after the warm-up; the allocator's cache stays."""
    calls = []
    for name in ('synchronize', 'empty_cache', 'reset_peak_memory_stats'):
        monkeypatch.setattr(torch.cuda, name, lambda *a, name=name: calls.append(name))
    monkeypatch.setattr(torch.cuda, 'max_memory_allocated', lambda *a: 123)
    monkeypatch.setattr(torch.cuda, 'max_memory_reserved', lambda *a: 456)

    class FakeModel:
        def train(self):
            calls.append('train')

        def train_step(self, data, optim_wrapper):
            calls.append('step')

    out = measure_training(FakeModel(), None, None, warmup=1, iters=2,
                           device=torch.device('cuda'))
    assert 'empty_cache' not in calls
    assert [c for c in calls if c != 'synchronize'] == ['train', 'step',
                                                      'reset_peak_memory_stats', 'step', 'step']
    assert (out['train_peak_memory_bytes'], out['train_peak_reserved_bytes']) == (123, 456)


def test_skipping_flops_keeps_the_parameter_count(tmp_path):
    cfg = load_benchmark_config(write_tiny_configs(tmp_path)['gscnn'], {}, None, (32, 32))
    model = build_model(cfg, CPU)
    full = count_complexity(model, (32, 48), CPU)
    fast = count_complexity(model, (32, 48), CPU, count_flops=False)
    assert fast == dict(params=full['params'], flops=None, flops_uncounted_ops=None)
    assert full['params'] == sum(p.numel() for p in model.parameters())
    assert full['flops'] > 0 and isinstance(full['flops_uncounted_ops'], dict)
    # a convolution's multiply-adds grow with the image area
    assert count_complexity(model, (64, 96), CPU)['flops'] > 3 * full['flops']


def test_methods_say_how_on_each_device():
    cpu, cuda = methods(CPU), methods(torch.device('cuda', 0))
    assert cpu['train_memory'].startswith('each training measurement')
    assert 'max_memory_allocated' in cuda['train_memory']
    assert 'bf16' in cpu['amp'] and 'fp16' in cuda['amp']
    assert 'FlopAnalyzer' in cpu['flops']
    assert methods(CPU, count_flops=False)['flops'] == 'not counted (--skip-flops)'
