"""Tiny configs for the benchmark tests (mmgscnn.benchmark, tools/benchmark.py)."""
from helpers import tiny_model

CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)


def _write_config(path, model):
    path.write_text(f'model = {model.to_dict()!r}\n')
    return str(path)


def write_tiny_configs(root):
    """Baseline, baseline + DualTaskLoss, GSCNN (the tiny models of
    helpers.py) as config files under ``root`` -> {name: path}."""
    return dict(
        baseline=_write_config(root / 'base.py', tiny_model(gscnn=False)),
        dualtask=_write_config(root / 'dual.py', tiny_model(
            gscnn=False, loss_decode=[CE, dict(type='DualTaskLoss', loss_weight=1.0)])),
        gscnn=_write_config(root / 'gscnn.py', tiny_model(gscnn=True)))
