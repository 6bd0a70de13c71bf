"""What is measured of one model: parameters, FLOPs, training step time and
peak memory, inference latency; :func:`methods` says how, in words."""
import statistics
import time

from .inputs import infer_batch
from .precision import amp_context


def sync(device):
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, warmup, iters, device, after_warmup=None):
    """Run ``fn`` warmup + iters times -> seconds of the timed runs.
    ``after_warmup()`` runs between the two (e.g. a memory counter reset)."""
    for _ in range(warmup):
        fn()
    sync(device)
    if after_warmup is not None:
        after_warmup()
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def count_complexity(model, infer_size, device, count_flops=True):
    """Parameters, and FLOPs of one image at ``infer_size`` (H, W) in tensor
    mode (backbone + heads, no post-processing), by mmengine's FlopAnalyzer
    (the counter of get_model_complexity_info; one multiply-add = one FLOP).
    ``count_flops=False``: flops and flops_uncounted_ops are None."""
    import torch
    from mmengine.analysis import FlopAnalyzer, parameter_count
    params = int(parameter_count(model)[''])
    if not count_flops:
        return dict(params=params, flops=None, flops_uncounted_ops=None)
    model.eval()
    x = torch.randn(1, 3, *infer_size, device=device)
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (x, ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        flops = int(analyzer.total())
        unsupported = dict(analyzer.unsupported_ops())
    return dict(params=params, flops=flops, flops_uncounted_ops=unsupported)


def measure_training(model, optim_wrapper, data, warmup, iters, device):
    """Median seconds of ``model.train_step`` (data preprocessor, forward,
    losses, backward, optimizer step), and on CUDA the peak allocated memory
    in bytes (params, grads, optimizer state, activations) over the timed
    steps. The counter is reset after the warm-up, so cuDNN's autotuning
    workspaces of the first steps are not counted."""
    import torch
    model.train()

    def reset():  # the peak counter only: the allocator keeps its cache, as in training
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)

    times = timed(lambda: model.train_step(data, optim_wrapper), warmup, iters, device,
                  after_warmup=reset)
    out = dict(train_step_s=statistics.median(times), train_step_s_all=times)
    if device.type == 'cuda':
        out['train_peak_memory_bytes'] = int(torch.cuda.max_memory_allocated(device))
        out['train_peak_reserved_bytes'] = int(torch.cuda.max_memory_reserved(device))
    return out


def measure_inference(model, size, precision, warmup, iters, device):
    """Median seconds of ``model.test_step`` on one image of ``size`` (H, W):
    data preprocessor, whole-image inference, post-processing (predict mode)."""
    import torch
    model.eval()
    data = infer_batch(size)
    with torch.no_grad(), amp_context(precision, device):
        times = timed(lambda: model.test_step(data), warmup, iters, device)
    return dict(infer_s=statistics.median(times), infer_s_all=times)


def methods(device, count_flops=True):
    """{figure: how it is measured on ``device``}, for the JSON and the report."""
    common = dict(
        params='all parameters of the model (mmengine parameter_count)',
        flops='one image at --infer-size, tensor mode (backbone + heads, no '
              'post-processing), mmengine FlopAnalyzer (a multiply-add counts as one)'
              if count_flops else 'not counted (--skip-flops)',
        train_time='median seconds of model.train_step (data preprocessor, forward, '
                   'losses, backward, optimizer step) on a synthetic batch after '
                   '--warmup steps; no data loading',
        inference='median seconds of model.test_step (predict path: data preprocessor, '
                  'whole-image inference, resize to the image, argmax; GSCNN also '
                  'its boundary map) on one image of --infer-size, under no_grad, batch norms '
                  'folded into the convolutions and conv -> ReLU (conv -> add -> ReLU) '
                  'run as one operator (mmgscnn.deploy.fuse_bn)',
        amp=('fp16 autocast; training with mmengine AmpOptimWrapper (dynamic loss '
             'scaling)' if device.type == 'cuda' else
             'bf16 autocast (torch.autocast on the CPU; mmengine AmpOptimWrapper is '
             'CUDA-only), no loss scaling'),
        sync_check="mmgscnn's forward and loss code (image recovery, shape stream, "
                   'fusion, boundary targets and losses, DualTaskLoss) run under '
                   "torch.cuda.set_sync_debug_mode('error'); mmseg's backbone and its "
                   'cross-entropy/accuracy run outside it')
    if device.type == 'cuda':
        common.update(
            train_memory='torch.cuda.max_memory_allocated over the timed steps, '
                         'reset after the warm-up (reset_peak_memory_stats) (params, '
                         'grads, optimizer state, activations; not the CUDA context or '
                         'cached blocks)',
            timing_sync='torch.cuda.synchronize before and after every timed step')
    else:
        common.update(
            train_memory='each training measurement runs in a fresh process; peak RSS '
                         '(VmHWM, reset via /proc/self/clear_refs) minus the RSS before '
                         'the model is built: params, grads, optimizer state, activations '
                         'and allocator overhead',
            timing_sync='not needed on the CPU (synchronous)')
    return common
