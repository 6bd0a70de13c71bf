"""Where the time of one training or inference step goes: torch.profiler
tables written next to the benchmark's figures (``--profile DIR``)."""
import os
import os.path as osp
import re

from .measurement import sync


def profile_step(fn, device, path, row_limit=40):
    """Run ``fn`` twice (the first is a warm-up), profile the second and write
    the operator table, sorted by device time on CUDA (CPU time elsewhere),
    to ``path``. The named ranges of mmgscnn's head (``mmgscnn.*``) appear as
    rows of their own. Returns the path."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    fn()
    sync(device)
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        sync(device)
    sort_by = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    table = prof.key_averages().table(sort_by=sort_by, row_limit=row_limit)
    ranges = [e for e in prof.key_averages() if e.key.startswith('mmgscnn.')]
    ranges.sort(key=lambda e: e.key)
    lines = [f'{e.key}: CPU total {e.cpu_time_total / 1e3:.2f} ms' +
             (f', device total {e.device_time_total / 1e3:.2f} ms'
              if device.type == 'cuda' else '') + f', calls {e.count}' for e in ranges]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(['# named ranges of mmgscnn (totals include their children)']
                          + lines + ['', table, '']))
    return path


def profile_path(folder, group, label, precision, step):
    """``folder/<group>-<label>-<precision>-<step>.txt`` with a safe name."""
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', f'{group}-{label}-{precision}-{step}')
    return osp.join(folder, name + '.txt')
