"""Cost of the shape stream against the baseline: parameters, FLOPs, training
step time and peak memory, inference latency, in fp32 and with AMP.

    python tools/benchmark.py [--groups deeplabv3plus pspnet] [--stride2]
        [--configs [LABEL=]BASELINE [LABEL=]OTHER ... [--configs ...]]
        [--device cuda] [--batch 2] [--crop 512 1024] [--infer-size 1024 2048]
        [--warmup 5] [--iters 20] [--precision fp32 amp]
        [--cfg-options k=v ...] [--out FILE.json] [--markdown FILE.md]

A group is a baseline config and the configs compared with it; every model
of every group is measured in this one run, one after the other, and each
figure is divided by the baseline's. Built-in groups (``--groups``):
``deeplabv3plus`` and ``pspnet``, each mmseg's R101-D8 Cityscapes config
(``baseline``), the same model trained with our DualTaskLoss
(``dualtask``, configs/dualtask/) and the GSCNN model (``gscnn``,
configs/gscnn/). ``--stride2`` adds, for every GSCNN config, a copy with
``model.shape_head.shape_stream.stride=2`` (``gscnn-s2``).

See docs/benchmarks.md for what every figure means and how it is measured.
"""
import argparse
import contextlib
import copy
import datetime
import gc
import json
import math
import os
import os.path as osp
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# group -> [(label, config)]; the first is the baseline. Relative paths are
# relative to the repository root.
GROUPS = {
    'deeplabv3plus': [
        ('baseline',
         'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('dualtask', 'configs/dual_task/dual-task-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('gscnn', 'configs/gscnn/gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ],
    'pspnet': [
        ('baseline', 'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('dualtask', 'configs/dual_task/dual-task-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('gscnn', 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ],
}

# Targets of issue #7 for GSCNN / baseline, by shape-stream stride.
TARGETS = {
    1: dict(train_time_ratio=1.15, train_memory_ratio=1.25, infer_time_ratio=1.10),
    2: dict(train_time_ratio=1.05, train_memory_ratio=1.10, infer_time_ratio=1.05),
}
RATIOS = ('params_ratio', 'flops_ratio', 'train_time_ratio', 'train_memory_ratio',
          'infer_time_ratio')
# absolute figures behind the ratios (units: count, FLOPs, s, bytes, s)
FIGURES = ('params', 'flops', 'train_step_s', 'train_peak_memory_bytes', 'infer_s')
RATIO_OF = dict(params_ratio='params', flops_ratio='flops',
                train_time_ratio='train_step_s',
                train_memory_ratio='train_peak_memory_bytes', infer_time_ratio='infer_s')

DEFAULT_OPTIM_WRAPPER = dict(type='OptimWrapper', optimizer=dict(
    type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
SYNC_ERROR = 'called a synchronizing CUDA operation'
SERVER_FLAG = '--_train-server'


class BenchmarkError(SystemExit):
    """A bad option or input; the message names it and the fix."""

    def __init__(self, msg):
        super().__init__(f'benchmark.py: {msg}')


# ---------------------------------------------------------------- options
def parse_args(argv):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Shape stream vs baseline: params, FLOPs, training step time and '
        'peak memory, inference latency (fp32 and AMP).')
    p.add_argument('--groups', nargs='+', default=None, metavar='GROUP',
                   help=f'built-in groups to run: {", ".join(GROUPS)} (default: all, '
                   'unless --configs is given)')
    p.add_argument('--configs', nargs='+', action='append', default=None,
                   metavar='[LABEL=]CONFIG',
                   help='one more group: the baseline config first, then the configs '
                   'compared with it; a config is a file or an mmseg:: path; repeat '
                   'the option for several groups')
    p.add_argument('--stride2', action='store_true',
                   help='also run every GSCNN config with '
                   'model.shape_head.shape_stream.stride=2')
    p.add_argument('--device', default=None,
                   help="'cuda', 'cuda:N' or 'cpu' (default: cuda when available)")
    p.add_argument('--batch', type=int, default=2, help='training batch size')
    p.add_argument('--crop', type=int, nargs=2, default=[512, 1024], metavar=('H', 'W'),
                   help='training crop (default 512 1024)')
    p.add_argument('--infer-size', type=int, nargs=2, default=[1024, 2048],
                   metavar=('H', 'W'), help='inference image size, batch 1 '
                   '(default 1024 2048, full Cityscapes); FLOPs are counted at it')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps before timing')
    p.add_argument('--iters', type=int, default=20, help='timed steps (median reported)')
    p.add_argument('--precision', nargs='+', default=['fp32', 'amp'],
                   choices=['fp32', 'amp'],
                   help='amp: fp16 autocast with AmpOptimWrapper on CUDA, bf16 '
                   'autocast on the CPU')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (torch.set_num_threads) in this process and '
                   'the CPU training workers (default: torch\'s default)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='config overrides applied to every config, e.g. '
                   'model.backbone.depth=50')
    p.add_argument('--out', help='write the results as JSON to this file')
    p.add_argument('--markdown', help='write the tables as Markdown to this file')
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise BenchmarkError(f'--threads must be >= 1, got {args.threads}')
    for name in ('batch', 'iters'):
        if getattr(args, name) < 1:
            raise BenchmarkError(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.warmup < 0:
        raise BenchmarkError(f'--warmup must be >= 0, got {args.warmup}')
    for name in ('crop', 'infer_size'):
        if min(getattr(args, name)) < 1:
            raise BenchmarkError(f'--{name.replace("_", "-")} needs two positive sizes '
                                 f'H W, got {getattr(args, name)}')
    args.precision = list(dict.fromkeys(args.precision))
    return args


def resolve_device(name):
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
        # 'cuda' means the current device; torch.cuda.set_device needs an index
        device = torch.device('cuda', torch.cuda.current_device())
    return device


def resolve_config(path, base_dir):
    """A config file path, or ``pkg::rel/path.py`` (mmengine's notation for a
    config shipped with a package, e.g. mmseg's) -> an existing file path."""
    if '::' in path:
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.utils import get_installed_path
        prefix, rel = path.split('::', 1)
        if prefix not in MODULE2PACKAGE:
            raise BenchmarkError(f'config {path!r}: unknown package prefix {prefix!r}; '
                                 'use a file path or mmseg::<folder>/<file>.py')
        full = osp.join(get_installed_path(MODULE2PACKAGE[prefix]), '.mim', 'configs', rel)
    else:
        full = path if osp.isabs(path) else osp.join(base_dir, path)
    if not osp.isfile(full):
        raise BenchmarkError(f'config {path!r} does not exist (looked for {full}); pass '
                             'an existing config file, or an mmseg:: path such as '
                             "'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'")
    return full


def select_groups(args):
    """-> [(group name, [column dict])], columns with label, config, path."""
    if args.groups is None and args.configs is None:
        args.groups = list(GROUPS)
    groups = []
    for name in args.groups or []:
        if name not in GROUPS:
            raise BenchmarkError(f'--groups: unknown group {name!r}; known groups: '
                                 f'{", ".join(GROUPS)} (or give your own configs with '
                                 '--configs BASELINE OTHER ...)')
        groups.append((name, [dict(label=label, config=cfg, path=resolve_config(cfg, REPO))
                              for label, cfg in GROUPS[name]]))
    for i, specs in enumerate(args.configs or []):
        if len(specs) < 2:
            raise BenchmarkError(f'--configs {" ".join(specs)}: a group needs a baseline '
                                 'config and at least one config to compare with it')
        cols = []
        for j, spec in enumerate(specs):
            label, sep, cfg = spec.partition('=')
            if not sep:
                cfg = spec
                label = 'baseline' if j == 0 else osp.splitext(osp.basename(spec))[0]
            cols.append(dict(label=label, config=cfg, path=resolve_config(cfg, os.getcwd())))
        labels = [c['label'] for c in cols]
        if len(set(labels)) != len(labels):
            raise BenchmarkError(f'--configs {" ".join(specs)}: labels must differ, got '
                                 f'{labels}; name them LABEL=CONFIG')
        name = osp.splitext(osp.basename(cols[0]['config']))[0]
        if any(name == g for g, _ in groups):
            name = f'{name}-{i}'
        groups.append((name, cols))
    for _, cols in groups:
        for col in cols:
            col.setdefault('options', {})
    return groups


# ---------------------------------------------------------------- models
def _syncbn_to_bn(node):
    """Replace SyncBN by BN everywhere in a config (single-process runs)."""
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            _syncbn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _syncbn_to_bn(value)


def load_benchmark_config(path, column_options, cfg_options, crop):
    """The config of one model, ready to build without downloads: no
    pretrained weights, BN for SyncBN, whole-image inference, batches padded
    to ``crop``; then the column's and the user's ``--cfg-options``."""
    from mmgscnn.utils.config import load_config
    cfg = load_config(path)
    cfg.merge_from_dict({'model.pretrained': None,
                         'model.data_preprocessor.size': tuple(crop),
                         'model.data_preprocessor.size_divisor': None,
                         'model.test_cfg.mode': 'whole'})
    if column_options:
        cfg.merge_from_dict(column_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _syncbn_to_bn(cfg.model)
    return cfg


def shape_stream_stride(cfg):
    """Stride of the config's shape stream, or None for a model without one."""
    head = cfg.model.get('shape_head')
    if head is None:
        head = cfg.model.get('decode_head', {})
        if not isinstance(head, dict) or head.get('type') != 'GatedShapeHead':
            return None
    return int((head.get('shape_stream') or {}).get('stride', 1))


def build_model(cfg, device):
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model).to(device)


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


# ---------------------------------------------------------------- data
def train_batch(model, batch, crop, seed=0):
    """A training batch as a data loader gives it: uint8 images (3, H, W)
    and labels (1, H, W) with blobs of classes and a band of ignore_index."""
    import torch
    import torch.nn.functional as F
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = crop
    g = torch.Generator().manual_seed(seed)
    head = model.decode_head
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        coarse = torch.randint(0, head.num_classes, (1, 1, max(1, h // 16), max(1, w // 16)),
                               generator=g).float()
        label = F.interpolate(coarse, size=(h, w), mode='nearest')[0].long()
        label[:, :max(1, h // 16)] = head.ignore_index
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label), metainfo=meta))
    return dict(inputs=inputs, data_samples=samples)


def infer_batch(size, seed=1):
    """One uint8 image (3, H, W) with its meta, as the test pipeline gives it."""
    import torch
    from mmseg.structures import SegDataSample
    h, w = size
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
    return dict(inputs=[img], data_samples=[SegDataSample(metainfo=meta)])


# ---------------------------------------------------------------- measuring
def _sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn, warmup, iters, device, after_warmup=None):
    """Run ``fn`` warmup + iters times -> seconds of the timed runs.
    ``after_warmup()`` runs between the two (e.g. a memory counter reset)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    if after_warmup is not None:
        after_warmup()
    times = []
    for _ in range(iters):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def count_complexity(model, infer_size, device):
    """Parameters, and FLOPs of one image at ``infer_size`` in tensor mode
    (backbone + heads, no post-processing), by mmengine's FlopAnalyzer (the
    counter of get_model_complexity_info; one multiply-add = one FLOP)."""
    import torch
    from mmengine.analysis import FlopAnalyzer, parameter_count
    params = int(parameter_count(model)[''])
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
    (params, grads, optimizer state, activations) over the timed steps. The
    counter is reset after the warm-up, so cuDNN's autotuning workspaces of
    the first steps are not counted."""
    import torch
    model.train()

    def reset():
        if device.type == 'cuda':
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)

    times = _timed(lambda: model.train_step(data, optim_wrapper), warmup, iters, device,
                   after_warmup=reset)
    out = dict(train_step_s=statistics.median(times), train_step_s_all=times)
    if device.type == 'cuda':
        out['train_peak_memory_bytes'] = int(torch.cuda.max_memory_allocated(device))
        out['train_peak_reserved_bytes'] = int(torch.cuda.max_memory_reserved(device))
    return out


def measure_inference(model, size, precision, warmup, iters, device):
    """Median seconds of ``model.test_step`` on one image of ``size``: data
    preprocessor, whole-image inference, post-processing (predict mode)."""
    import torch
    model.eval()
    data = infer_batch(size)
    with torch.no_grad(), amp_context(precision, device):
        times = _timed(lambda: model.test_step(data), warmup, iters, device)
    return dict(infer_s=statistics.median(times), infer_s_all=times)


def _own_losses(head):
    """Loss modules of the head's loss_decode that come from mmgscnn."""
    losses = getattr(head, 'loss_decode', None)
    if losses is None:
        return []
    losses = list(losses) if not hasattr(losses, 'loss_name') else [losses]
    return [m for m in losses if type(m).__module__.startswith('mmgscnn')]


def run_own_code(model, data, check=contextlib.nullcontext):
    """Run mmgscnn's own forward and loss code of a model on a training
    batch, each part inside ``check()``; mmseg's parts (backbone, the
    decoder's cross-entropy and accuracy) run outside it.

    GSCNN: image recovery, shape stream and decoder with the fusion
    (``forward_with_boundary``), then ``GatedShapeHead.loss_by_feat`` with the
    wrapped decoder's own losses left out (boundary targets, boundary BCE,
    attention and dual-task losses). Plain heads: the mmgscnn losses of
    ``loss_decode``. Returns {name: loss tensor} of our losses.
    """
    from unittest import mock
    from mmseg.models.segmentors import EncoderDecoder
    from mmseg.models.utils import resize
    from mmgscnn.models.segmentors.gscnn_encoder_decoder import FeaturesWithImage
    model.train()
    data = model.data_preprocessor(data, True)
    inputs, samples = data['inputs'], data['data_samples']
    head = model.decode_head
    feats = EncoderDecoder.extract_feat(model, inputs)
    if hasattr(head, 'shape_stream'):
        with check():
            x = FeaturesWithImage(feats, model._pixel_image(inputs))
            seg_logits, boundary_logits = head.forward_with_boundary(x)
        with mock.patch.object(head.decoder, 'loss_by_feat', lambda *a, **k: {}), check():
            return head.loss_by_feat(seg_logits, boundary_logits, samples)
    own = _own_losses(head)
    if not own:
        return {}
    seg_logits = head.forward(feats)
    seg_label = head._stack_batch_gt(samples).squeeze(1)
    seg_logits = resize(seg_logits, size=seg_label.shape[-2:], mode='bilinear',
                        align_corners=head.align_corners)
    with check():
        return {m.loss_name: m(seg_logits, seg_label, ignore_index=head.ignore_index)
                for m in own}


def _has_own_code(model):
    return hasattr(model.decode_head, 'shape_stream') or bool(_own_losses(model.decode_head))


def check_host_sync(model, data, precision, device):
    """'passed' / 'failed: ...' / 'not run: ...': mmgscnn's forward and loss
    code under ``torch.cuda.set_sync_debug_mode('error')`` (CUDA only)."""
    import torch
    if not _has_own_code(model):
        return 'not applicable: no mmgscnn code in this model'
    if device.type != 'cuda':
        return 'not run: CPU (needs CUDA)'

    @contextlib.contextmanager
    def sync_errors():
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode('error')
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    _sync(device)
    try:
        with amp_context(precision, device):
            run_own_code(model, data, sync_errors)
    except RuntimeError as e:
        if SYNC_ERROR not in str(e):
            raise
        import traceback
        frames = traceback.extract_tb(e.__traceback__)
        ours = [f for f in frames if f'{os.sep}mmgscnn{os.sep}' in f.filename]
        where = ours[-1] if ours else frames[-1]
        return (f'failed: synchronising op at {osp.relpath(where.filename, REPO)}:'
                f'{where.lineno} ({where.line})')
    finally:
        _sync(device)
    return 'passed'


# ---------------------------------------------------------------- CPU memory
def _proc_status_bytes(key):
    """VmRSS / VmHWM of this process in bytes (Linux /proc)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} not in /proc/self/status')


def _reset_peak_rss():
    """Set VmHWM (peak RSS) to the current RSS (Linux >= 4.0)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def train_worker(spec):
    """One CPU training measurement, in a freshly forked process (peak RSS
    is per process). Memory = peak RSS during model build and training
    minus the RSS before the build (libraries imported and their conv/BN
    kernels loaded, so library code is not counted) -> result dict."""
    import torch
    if spec['threads']:
        torch.set_num_threads(spec['threads'])
    device = torch.device('cpu')
    cfg = load_benchmark_config(spec['path'], spec['options'], spec['cfg_options'],
                                spec['crop'])
    warm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    with amp_context(spec['precision'], device):
        warm(torch.randn(2, 3, 16, 16)).sum().backward()
    del warm
    gc.collect()
    _reset_peak_rss()
    rss0 = _proc_status_bytes('VmRSS')
    model = build_model(cfg, device)
    optim_wrapper = build_optim_wrapper(model, cfg, spec['precision'], device)
    rss_built = _proc_status_bytes('VmRSS')
    data = train_batch(model, spec['batch'], spec['crop'])
    result = measure_training(model, optim_wrapper, data, spec['warmup'], spec['iters'],
                              device)
    result.update(train_peak_memory_bytes=_proc_status_bytes('VmHWM') - rss0,
                  train_model_memory_bytes=rss_built - rss0,
                  torch_threads=torch.get_num_threads())
    return result


def train_server():
    """``benchmark.py --_train-server``: import the stack once, then for every
    spec (one JSON line on stdin) fork a child that runs :func:`train_worker`
    and writes its result to ``spec['out']``; reply the child's exit code
    (one line on stdout). The server itself never builds a model, so every
    child starts from the same clean process."""
    import traceback
    import torch  # noqa: F401
    import mmgscnn  # noqa: F401
    from mmengine.optim import OptimWrapper  # noqa: F401
    from mmseg.structures import SegDataSample  # noqa: F401
    reply = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # anything the models print goes to the log, not the replies
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        spec = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                result = train_worker(spec)
                with open(spec['out'], 'w') as f:
                    json.dump(result, f)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        reply.write(f'{os.waitstatus_to_exitcode(status)}\n')
        reply.flush()


class CPUTrainWorkers:
    """Runs CPU training measurements each in a fresh process, forked from
    one :func:`train_server` (which imports torch/mmseg once, saving a few
    seconds per measurement). Linux only (fork, /proc)."""

    def __init__(self):
        if not osp.isfile('/proc/self/clear_refs'):
            raise BenchmarkError('--device cpu: peak memory on the CPU is read from '
                                 'Linux /proc (VmHWM); run on Linux or with --device cuda')
        self._tmp = tempfile.TemporaryDirectory(prefix='mmgscnn-bench-')
        self._log = open(osp.join(self._tmp.name, 'server.log'), 'w+')
        self._proc = subprocess.Popen(
            [sys.executable, osp.abspath(__file__), SERVER_FLAG], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=REPO)
        self._count = 0

    def run(self, col, args, precision):
        """Training figures of one model and precision -> result dict."""
        self._count += 1
        out = osp.join(self._tmp.name, f'result{self._count}.json')
        spec = dict(path=col['path'], options=col['options'],
                    cfg_options=args.cfg_options or {}, crop=list(args.crop),
                    batch=args.batch, precision=precision, warmup=args.warmup,
                    iters=args.iters, threads=args.threads, out=out)
        self._log.seek(0, os.SEEK_END)
        start = self._log.tell()
        self._proc.stdin.write(json.dumps(spec) + '\n')
        self._proc.stdin.flush()
        reply = self._proc.stdout.readline().strip()
        if reply != '0' or not osp.isfile(out):
            self._log.flush()
            self._log.seek(start)
            raise RuntimeError(f'training measurement of {col["config"]} ({precision}) '
                               f'failed in its worker process (exit {reply or "?"}):\n'
                               f'{self._log.read()[-4000:]}')
        with open(out) as f:
            return json.load(f)

    def close(self):
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        self._tmp.cleanup()


# ---------------------------------------------------------------- one model
def measure_column(col, args, device, log, workers=None):
    """Every figure of one model, for every precision."""
    import torch
    cfg = load_benchmark_config(col['path'], col['options'], args.cfg_options, args.crop)
    rec = dict(group=col['group'], label=col['label'], config=col['config'],
               options=col['options'], shape_stream_stride=shape_stream_stride(cfg),
               train={}, infer={}, sync_check={})
    if device.type == 'cpu':
        for precision in args.precision:
            log(f'  [{col["label"]}] training, {precision}, in a worker process')
            rec['train'][precision] = workers.run(col, args, precision)
    model = build_model(cfg, device)
    initial = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    log(f'  [{col["label"]}] parameters and FLOPs at {args.infer_size}')
    rec.update(count_complexity(model, args.infer_size, device))
    data = train_batch(model, args.batch, args.crop)
    for precision in args.precision:
        if device.type == 'cuda':
            log(f'  [{col["label"]}] training, {precision}')
            model.load_state_dict(initial)
            optim_wrapper = build_optim_wrapper(model, cfg, precision, device)
            rec['train'][precision] = measure_training(model, optim_wrapper, data,
                                                       args.warmup, args.iters, device)
            del optim_wrapper
        log(f'  [{col["label"]}] inference, {precision}')
        model.load_state_dict(initial)
        rec['infer'][precision] = measure_inference(model, args.infer_size, precision,
                                                    args.warmup, args.iters, device)
        rec['sync_check'][precision] = check_host_sync(model, data, precision, device)
    del model, initial
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return rec


# ---------------------------------------------------------------- results
def _figures(rec, precision):
    return dict(params=rec['params'], flops=rec['flops'],
                train_step_s=rec['train'][precision]['train_step_s'],
                train_peak_memory_bytes=rec['train'][precision]['train_peak_memory_bytes'],
                infer_s=rec['infer'][precision]['infer_s'])


def make_pairs(records, env, precisions, device):
    """One record per (baseline, other column, precision) with the ratios,
    the figures behind them, the targets and the sync check."""
    pairs = []
    for group in dict.fromkeys(r['group'] for r in records):
        cols = [r for r in records if r['group'] == group]
        base = cols[0]
        for other in cols[1:]:
            for precision in precisions:
                b, o = _figures(base, precision), _figures(other, precision)
                pair = dict(group=group, baseline=base['label'], other=other['label'],
                            baseline_config=base['config'], other_config=other['config'],
                            other_options=other['options'],
                            shape_stream_stride=other['shape_stream_stride'],
                            device=env['device'], torch=env['torch'], batch=env['batch'],
                            crop=env['crop'], infer_size=env['infer_size'],
                            precision=precision_label(precision, device.type))
                for ratio, key in RATIO_OF.items():
                    pair[ratio] = o[key] / b[key]
                for key in FIGURES:
                    pair['baseline_' + key] = b[key]
                    pair['other_' + key] = o[key]
                targets = TARGETS.get(other['shape_stream_stride'], {})
                pair['targets'] = dict(targets)
                pair['targets_met'] = {k: pair[k] <= v for k, v in targets.items()}
                pair['sync_check'] = other['sync_check'][precision]
                pairs.append(pair)
    return pairs


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(args, device):
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
                python=platform.python_version(), batch=args.batch, crop=list(args.crop),
                infer_size=list(args.infer_size), warmup=args.warmup, iters=args.iters,
                precisions=[precision_label(p, device.type) for p in args.precision],
                cudnn_benchmark=bool(torch.backends.cudnn.benchmark)
                if device.type == 'cuda' else None,
                torch_threads=torch.get_num_threads(), cfg_options=args.cfg_options or {},
                load_average_start=_load_average())


def _load_average():
    """1-minute load average of the host (other jobs slow CPU timings down)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def methods(device):
    common = dict(
        params='all parameters of the model (mmengine parameter_count)',
        flops='one image at --infer-size, tensor mode (backbone + heads, no '
              'post-processing), mmengine FlopAnalyzer (a multiply-add counts as one)',
        train_time='median seconds of model.train_step (data preprocessor, forward, '
                   'losses, backward, optimizer step) on a synthetic batch after '
                   '--warmup steps; no data loading',
        inference='median seconds of model.test_step (predict path: data preprocessor, '
                  'whole-image inference, resize to the image, argmax; GSCNN also '
                  'its boundary map) on one image of --infer-size, under no_grad',
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
                         'reset after the warm-up (reset_peak_memory_stats) (params, grads, optimizer '
                         'state, activations; not the CUDA context or cached blocks)',
            timing_sync='torch.cuda.synchronize before and after every timed step')
    else:
        common.update(
            train_memory='each training measurement runs in a fresh process; peak RSS '
                         '(VmHWM, reset via /proc/self/clear_refs) minus the RSS before '
                         'the model is built: params, grads, optimizer state, activations '
                         'and allocator overhead',
            timing_sync='not needed on the CPU (synchronous)')
    return common


def _fmt(value, scale, digits=3):
    """``value / scale`` with at least ``digits`` significant digits."""
    x = value / scale
    decimals = 0 if x == 0 else max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f'{x:.{decimals}f}'


def render_markdown(result):
    env = result['environment']
    lines = [
        '# Shape stream benchmark', '',
        f'- date: {result["date"]}',
        f'- command: `{result["command"]}`',
        f'- device: {env["device"]}',
        f'- torch {env["torch"]}, mmseg {env["mmseg"]}, mmcv {env["mmcv"]}, '
        f'mmengine {env["mmengine"]}, Python {env["python"]}',
        f'- training: batch {env["batch"]}, crop {env["crop"][0]}x{env["crop"][1]}; '
        f'inference: batch 1, {env["infer_size"][0]}x{env["infer_size"][1]}; '
        f'warm-up {env["warmup"]}, timed {env["iters"]} (median)',
        f'- precisions: {", ".join(env["precisions"])}',
        f'- host load average (1 min) at start / end: {env["load_average_start"]} / '
        f'{env["load_average_end"]}',
    ]
    if env['cfg_options']:
        lines.append(f'- --cfg-options: {env["cfg_options"]}')
    lines += ['', 'Methods:', '']
    lines += [f'- {k}: {v}' for k, v in result['methods'].items()]
    for group in dict.fromkeys(r['group'] for r in result['models']):
        recs = [r for r in result['models'] if r['group'] == group]
        for precision in result['precisions']:
            label = precision_label(precision, env['device_type'])
            lines += ['', f'## {group}, {label}', '',
                      '| model | config | params (M) | GFLOPs | train step (ms) | '
                      'train peak mem (MiB) | inference (ms) |',
                      '| --- | --- | ---: | ---: | ---: | ---: | ---: |']
            for r in recs:
                f = _figures(r, precision)
                cfg = r['config'] + ''.join(f' {k}={v}' for k, v in r['options'].items())
                lines.append(
                    f'| {r["label"]} | `{cfg}` | {_fmt(f["params"], 1e6)} | '
                    f'{_fmt(f["flops"], 1e9)} | {_fmt(f["train_step_s"], 1e-3)} | '
                    f'{_fmt(f["train_peak_memory_bytes"], 2**20)} | '
                    f'{_fmt(f["infer_s"], 1e-3)} |')
            lines += ['', '| ratio | params | FLOPs | train time | train memory | '
                      'inference | sync check |',
                      '| --- | ---: | ---: | ---: | ---: | ---: | --- |']
            for p in result['pairs']:
                if p['group'] != group or p['precision'] != label:
                    continue

                def cell(key):
                    text = f'{p[key]:.3f}'
                    if key in p['targets']:
                        met = 'met' if p['targets_met'][key] else '**missed**'
                        text += f' (<= {p["targets"][key]:.2f}: {met})'
                    return text
                lines.append(f'| {p["other"]} / {p["baseline"]} | {cell("params_ratio")} | '
                             f'{cell("flops_ratio")} | {cell("train_time_ratio")} | '
                             f'{cell("train_memory_ratio")} | {cell("infer_time_ratio")} | '
                             f'{p["sync_check"]} |')
    lines += ['', 'Targets (issue #7), GSCNN / baseline: stride-1 shape stream: train '
              'time <= 1.15, train memory <= 1.25, inference <= 1.10; stride 2: <= 1.05, '
              '<= 1.10, <= 1.05.', '']
    return '\n'.join(lines)


def _check_complete(result):
    """Every required pair field is a finite number, and every ratio is the
    ratio of the figures behind it."""
    for p in result['pairs']:
        for key in RATIOS + tuple('baseline_' + k for k in FIGURES) \
                + tuple('other_' + k for k in FIGURES):
            v = p[key]
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RuntimeError(f'{p["group"]} {p["other"]} {p["precision"]}: {key}={v!r}')


# ---------------------------------------------------------------- main
def main(argv=None):
    """Run the benchmark; returns the result dict (also written with --out)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [SERVER_FLAG]:
        return train_server()
    args = parse_args(argv)
    device = resolve_device(args.device)
    groups = select_groups(args)
    import torch
    import mmgscnn  # noqa: F401  (registers the plug-in)
    # global torch settings, restored at the end: main() may run inside another program
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if device.type == 'cuda':
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv, device, groups)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def _run(args, argv, device, groups):
    import torch

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    columns = []
    for group, cols in groups:
        for col in cols:
            col['group'] = group
            columns.append(col)
            cfg = load_benchmark_config(col['path'], col['options'], args.cfg_options,
                                        args.crop)
            if args.stride2 and shape_stream_stride(cfg) == 1:
                columns.append(dict(col, label=col['label'] + '-s2', options=dict(
                    col['options'], **{'model.shape_head.shape_stream.stride': 2})))
    env = environment(args, device)
    log(f'benchmark on {env["device"]}, torch {env["torch"]}')
    if device.type == 'cuda' and args.warmup < 2:
        log(f'warning: --warmup {args.warmup} on CUDA times cuDNN autotuning and lazy '
            'initialisation; use --warmup 5 or more for figures you report')
    records = []
    workers = CPUTrainWorkers() if device.type == 'cpu' else None
    try:
        for col in columns:
            log(f'{col["group"]}: {col["label"]} ({col["config"]})')
            records.append(measure_column(col, args, device, log, workers))
    finally:
        if workers is not None:
            workers.close()
    env['load_average_end'] = _load_average()
    result = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  command=shlex.join(['python', 'tools/benchmark.py'] + argv),
                  environment=env, precisions=args.precision, methods=methods(device),
                  pairs=make_pairs(records, env, args.precision, device), models=records)
    _check_complete(result)
    text = render_markdown(result)
    print(text)
    if args.markdown:
        os.makedirs(osp.dirname(osp.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, 'w') as f:
            f.write(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1, allow_nan=False)
    return result


if __name__ == '__main__':
    main()
