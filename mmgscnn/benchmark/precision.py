"""fp32 and AMP: the optimizer wrapper for training, autocast for
inference, and the label of the AMP flavour a device runs."""
import contextlib
import copy

from .options import BenchmarkError

DEFAULT_OPTIM_WRAPPER = dict(type='OptimWrapper', optimizer=dict(
    type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))


def build_optim_wrapper(model, cfg, precision, device):
    """mmengine's optimizer wrapper from the config (SGD if it has none).
    AMP: AmpOptimWrapper (fp16 autocast, dynamic loss scaling) on CUDA; on
    the CPU, where AmpOptimWrapper does not run, bf16 autocast around the
    forward (bf16 needs no loss scaling)."""
    from mmengine.optim import build_optim_wrapper as build
    ow_cfg = copy.deepcopy(cfg.get('optim_wrapper', None) or DEFAULT_OPTIM_WRAPPER)
    if precision == 'amp':
        if ow_cfg.get('type', 'OptimWrapper') not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise BenchmarkError(f'--precision amp: the config uses optim_wrapper.type='
                                 f"{ow_cfg['type']!r}; AMP needs OptimWrapper; drop amp "
                                 'from --precision or use such a config')
        if device.type == 'cuda':
            ow_cfg.update(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
        else:
            ow_cfg.pop('loss_scale', None)
            ow_cfg.pop('dtype', None)
            ow_cfg['type'] = _cpu_bf16_wrapper()
    return build(model, ow_cfg)


def _cpu_bf16_wrapper():
    from mmengine.optim import OptimWrapper
    from mmengine.runner.amp import autocast

    class CPUBf16OptimWrapper(OptimWrapper):
        """OptimWrapper whose forward runs under CPU bf16 autocast."""

        @contextlib.contextmanager
        def optim_context(self, model):
            import torch
            with super().optim_context(model), \
                    autocast(device_type='cpu', dtype=torch.bfloat16):
                yield

    return CPUBf16OptimWrapper


def amp_context(precision, device):
    """Autocast for inference: fp16 on CUDA, bf16 on the CPU; none for fp32."""
    import torch
    from mmengine.runner.amp import autocast
    if precision != 'amp':
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return autocast(device_type=device.type, dtype=dtype)


def precision_label(precision, device_type):
    """'fp32', or the AMP flavour the device runs: 'amp-fp16' (CUDA) or 'amp-bf16'."""
    if precision == 'fp32':
        return 'fp32'
    return 'amp-fp16' if device_type == 'cuda' else 'amp-bf16'
