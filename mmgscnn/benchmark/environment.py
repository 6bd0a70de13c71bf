"""The machine and libraries a run measured on, and the run's settings."""
import os
import platform

from .precision import precision_label


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """1-minute load average of the host (other jobs slow CPU timings down)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment(options, device):
    """Device description, library versions, sizes and settings of the run."""
    import mmcv
    import mmengine
    import mmseg
    import torch
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
        desc = f'{name} (CUDA {torch.version.cuda})'
    else:
        desc = f'CPU: {_cpu_name()}, {os.cpu_count()} logical cores, ' \
               f'{torch.get_num_threads()} torch threads'
    return dict(device=desc, device_type=device.type, torch=torch.__version__,
                mmseg=mmseg.__version__, mmcv=mmcv.__version__, mmengine=mmengine.__version__,
                python=platform.python_version(), batch=options.batch,
                crop=list(options.crop), infer_size=list(options.infer_size),
                warmup=options.warmup, iters=options.iters,
                precisions=[precision_label(p, device.type) for p in options.precision],
                cudnn_benchmark=bool(torch.backends.cudnn.benchmark)
                if device.type == 'cuda' else None,
                torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                cfg_options=options.cfg_options or {}, load_average_start=load_average())
