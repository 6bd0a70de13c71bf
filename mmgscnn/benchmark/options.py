"""The options of one benchmark run, checked (:class:`BenchmarkOptions`),
and the device they name."""
import argparse
import dataclasses
from typing import List, Optional, Sequence

STRIDE2_VARIANT = ('s2', 'model.shape_head.shape_stream.stride=2')


class BenchmarkError(SystemExit):
    """A bad option or input; the message names it and the fix."""

    def __init__(self, msg):
        super().__init__(f'benchmark.py: {msg}')


@dataclasses.dataclass
class BenchmarkOptions:
    """Every option of ``tools/benchmark.py`` (same names, same defaults).

    Sizes are (H, W) in pixels; ``time_limit`` in seconds. ``variant`` holds
    the raw ``--variant LABEL KEY=VALUE ...`` lists; after the checks
    ``variants`` is ``[(label, {key: value})]`` with ``--stride2`` as ``s2``.
    ``traffic_only`` implies ``traffic``.
    """
    groups: Optional[List[str]] = None
    configs: Optional[List[List[str]]] = None
    variant: Optional[List[List[str]]] = None
    stride2: bool = False
    device: Optional[str] = None
    batch: int = 2
    crop: Sequence[int] = (512, 1024)
    infer_size: Sequence[int] = (1024, 2048)
    warmup: int = 5
    iters: int = 20
    rounds: int = 3
    precision: Sequence[str] = ('fp32', 'amp')
    threads: Optional[int] = None
    cfg_options: Optional[dict] = None
    skip_flops: bool = False
    time_limit: Optional[float] = None
    out: Optional[str] = None
    markdown: Optional[str] = None
    profile: Optional[str] = None
    traffic: bool = False
    traffic_only: bool = False
    inductor_kernels: bool = False
    variants: list = dataclasses.field(init=False, default_factory=list)

    def __post_init__(self):
        if self.threads is not None and self.threads < 1:
            raise BenchmarkError(f'--threads must be >= 1, got {self.threads}')
        for name in ('batch', 'iters', 'rounds'):
            if getattr(self, name) < 1:
                raise BenchmarkError(f'--{name} must be >= 1, got {getattr(self, name)}')
        if self.warmup < 0:
            raise BenchmarkError(f'--warmup must be >= 0, got {self.warmup}')
        for name in ('crop', 'infer_size'):
            size = list(getattr(self, name))
            if len(size) != 2 or min(size) < 1:
                raise BenchmarkError(f'--{name.replace("_", "-")} needs two positive '
                                     f'sizes H W, got {size}')
            setattr(self, name, size)
        unknown = set(self.precision) - {'fp32', 'amp'}
        if unknown or not self.precision:
            raise BenchmarkError(f'--precision takes fp32 and/or amp, got '
                                 f'{list(self.precision)}')
        self.precision = list(dict.fromkeys(self.precision))
        if self.traffic_only:
            if self.profile:
                raise BenchmarkError('--traffic-only measures no step time; drop --profile '
                                     'or --traffic-only')
            self.traffic = True
        if self.time_limit is not None and not self.time_limit > 0:
            raise BenchmarkError(f'--time-limit must be a positive number of seconds, got '
                                 f'{self.time_limit}')
        specs = list(self.variant or []) + ([list(STRIDE2_VARIANT)] if self.stride2 else [])
        self.variants = [parse_variant(spec) for spec in specs]
        labels = [label for label, _ in self.variants]
        if len(set(labels)) != len(labels):
            raise BenchmarkError(f'--variant labels must differ, got {labels} (--stride2 '
                                 'is the variant s2); rename one')


def parse_variant(spec):
    """``[LABEL, 'KEY=VALUE', ...]`` -> ``(LABEL, {KEY: value})``; values are
    parsed as ``--cfg-options`` parses them (numbers, booleans, None, lists)."""
    from mmengine.config import DictAction
    shown = ' '.join(spec)
    if len(spec) < 2 or '=' in spec[0] or not spec[0]:
        raise BenchmarkError(f'--variant {shown}: give a LABEL, then one or more '
                             'KEY=VALUE config overrides, e.g. --variant s2 '
                             'model.shape_head.shape_stream.stride=2')
    bad = [kv for kv in spec[1:] if '=' not in kv or kv.startswith('=')]
    if bad:
        raise BenchmarkError(f'--variant {shown}: {bad} is not KEY=VALUE; write each '
                             'override as a config key, "=", and its value')
    parsed = argparse.Namespace()
    DictAction([], 'overrides')(None, parsed, spec[1:])
    return spec[0], parsed.overrides


def resolve_device(name):
    """``--device`` -> a torch device; plain 'cuda' gets the current index
    (``torch.cuda.set_device`` needs one); None: CUDA when available."""
    import torch
    if name is None:
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise BenchmarkError(f"--device {name!r} is not a torch device ({e}); use "
                             "'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise BenchmarkError(f'--device {name}: CUDA is not available (torch '
                             f'{torch.__version__}); use --device cpu')
    if device.type not in ('cpu', 'cuda'):
        raise BenchmarkError(f'--device {name}: only cpu and cuda are supported')
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', torch.cuda.current_device())
    return device
