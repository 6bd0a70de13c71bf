"""What the experiments ran on, in words, for their reports."""
import os
import platform


def device_description() -> str:
    """'CUDA (<GPU name>), <n> CPU cores' when torch sees a GPU (the runs,
    subprocesses of this one, see the same devices), else 'CPU (<processor>,
    <n> cores)'."""
    import torch
    cores = os.cpu_count()
    if torch.cuda.is_available():
        return f'CUDA ({torch.cuda.get_device_name(0)}), {cores} CPU cores'
    return f'CPU ({platform.processor() or platform.machine()}, {cores} cores)'


def torch_version() -> str:
    import torch
    return torch.__version__


__all__ = ['device_description', 'torch_version']
