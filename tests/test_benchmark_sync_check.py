"""mmgscnn.benchmark.sync_check: the code the CUDA sync check wraps."""
import torch
from benchmark_helpers import write_tiny_configs

from mmgscnn.benchmark.benchmark_config import build_model, load_benchmark_config
from mmgscnn.benchmark.inputs import train_batch
from mmgscnn.benchmark.sync_check import check_host_sync, run_own_code


def test_own_code_runs_on_a_batch(tmp_path):
    """The code the CUDA sync check wraps runs and gives our losses."""
    configs = write_tiny_configs(tmp_path)
    for name, expected in (('gscnn', {'loss_boundary', 'loss_attention', 'loss_dual_task'}),
                           ('dualtask', {'loss_dual_task'}), ('baseline', set())):
        cfg = load_benchmark_config(configs[name], {}, None, (32, 48))
        model = build_model(cfg, torch.device('cpu'))
        data = train_batch(model, 2, (32, 48))
        entered = []

        def check():
            entered.append(1)
            return torch.no_grad()
        losses = run_own_code(model, data, check)
        assert set(losses) == expected, name
        assert all(torch.isfinite(v) for v in losses.values())
        assert bool(entered) == bool(expected)
        assert check_host_sync(model, data, 'fp32', torch.device('cpu')) == (
            'not run: CPU (needs CUDA)' if expected else
            'not applicable: no mmgscnn code in this model')
