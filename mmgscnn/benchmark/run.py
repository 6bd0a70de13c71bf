"""One benchmark run: every column measured one after the other (within
``--time-limit``), ratios to the baselines, the tables printed, JSON and
Markdown written."""
import copy
import dataclasses
import datetime
import gc
import json
import os
import os.path as osp
import shlex
import statistics
import sys
import time

from mmgscnn.deploy.fuse_bn import fuse_bn

from .benchmark_config import build_model, load_benchmark_config, shape_stream_stride
from .cpu_workers import CPUTrainWorkers
from .environment import environment, load_average
from .groups import add_variants, select_groups
from .inductor_kernels import count_inductor_kernels, inductor_kernels_method
from .inputs import infer_batch, train_batch
from .measurement import count_complexity, measure_inference, measure_training, methods
from .options import resolve_device
from .precision import amp_context, build_optim_wrapper
from .profiling import profile_path, profile_step
from .report import load_warning, render_markdown
from .results import check_complete, make_pairs, make_traffic_pairs
from .sync_check import check_host_sync
from .traffic import measure_traffic, traffic_method

_clock = time.monotonic  # seconds; the time limit's clock


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def measure_column(col, options, device, log=_log, workers=None, timing_only=False):
    """Every figure of one column, for every precision -> model record.
    On the CPU, training runs in ``workers`` (:class:`CPUTrainWorkers`).
    ``timing_only``: the step times and memory alone (a later round)."""
    import torch
    cfg = load_benchmark_config(col['path'], col['options'], options.cfg_options,
                                options.crop)
    rec = dict(group=col['group'], label=col['label'], config=col['config'],
               options=col['options'], shape_stream_stride=shape_stream_stride(cfg),
               variant=col['variant'], train={}, infer={}, sync_check={})
    if device.type == 'cpu' and not options.traffic_only:
        for precision in options.precision:
            log(f'  [{col["label"]}] training, {precision}, in a worker process')
            rec['train'][precision] = workers.run(col, options, precision)
    model = build_model(cfg, device)
    initial = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if timing_only:
        options = dataclasses.replace(options, traffic=False, inductor_kernels=False,
                                      profile=None, skip_flops=True)
    log(f'  [{col["label"]}] parameters' + ('' if options.skip_flops else
                                            f' and FLOPs at {options.infer_size}'))
    rec.update(count_complexity(model, options.infer_size, device,
                                count_flops=not options.skip_flops))
    data = train_batch(model, options.batch, options.crop)
    if options.traffic:
        log(f'  [{col["label"]}] full-resolution traffic, fp32')
        optim_wrapper = build_optim_wrapper(model, cfg, 'fp32', device)
        rec['traffic'] = measure_traffic(model, optim_wrapper, data, options.crop,
                                         options.infer_size)
        del optim_wrapper
    if options.inductor_kernels:
        rec['inductor_kernels'] = count_inductor_kernels(model, data, options.infer_size)
        log(f'  [{col["label"]}] Inductor kernels: {rec["inductor_kernels"]}')
    for precision in ([] if options.traffic_only else options.precision):
        if device.type == 'cuda':
            log(f'  [{col["label"]}] training, {precision}')
            model.load_state_dict(initial)
            optim_wrapper = build_optim_wrapper(model, cfg, precision, device)
            rec['train'][precision] = measure_training(model, optim_wrapper, data,
                                                       options.warmup, options.iters, device)
            if options.profile:
                model.train()
                rec.setdefault('profiles', {})[f'{precision}-train'] = profile_step(
                    lambda: model.train_step(data, optim_wrapper), device,
                    profile_path(options.profile, col['group'], col['label'], precision,
                                 'train'))
            del optim_wrapper
        log(f'  [{col["label"]}] inference, {precision}, BN folded')
        model.load_state_dict(initial)
        fused = fuse_bn(copy.deepcopy(model))
        rec['infer'][precision] = measure_inference(fused, options.infer_size, precision,
                                                    options.warmup, options.iters, device)
        if options.profile:
            batch = infer_batch(options.infer_size)
            with torch.no_grad(), amp_context(precision, device):
                rec.setdefault('profiles', {})[f'{precision}-infer'] = profile_step(
                    lambda: fused.test_step(batch), device,
                    profile_path(options.profile, col['group'], col['label'], precision,
                                 'infer'))
        del fused
        if not timing_only:
            rec['sync_check'][precision] = check_host_sync(model, data, precision, device)
    del model, initial
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return rec


def list_columns(options):
    """Every column of the run in order, ``--variant`` copies after their
    GSCNN column (a column whose config has a shape stream)."""
    columns = [col for _, cols in select_groups(options) for col in cols]

    def has_shape_stream(col):
        cfg = load_benchmark_config(col['path'], col['options'], options.cfg_options,
                                    options.crop)
        return shape_stream_stride(cfg) is not None

    return add_variants(columns, options.variants, has_shape_stream)


def run_benchmark(options, argv=()):
    """Run the benchmark (:class:`BenchmarkOptions`); ``argv`` is the tool's
    command line, kept in the result. Returns the result dict (also written
    with ``options.out``). Torch's global settings are restored at the end."""
    start = _clock()
    device = resolve_device(options.device)
    columns = list_columns(options)
    import torch
    import mmgscnn  # noqa: F401  (registers the plug-in)
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if device.type == 'cuda':
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _run(options, argv, device, columns, start)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def _measure_within_limit(columns, options, device, start, measure=None):
    """-> (model records, columns skipped because ``--time-limit`` would be
    passed: a column starts only if the longest column so far still fits).
    The timings run in ``--rounds`` interleaved rounds (every column once
    per round, in order); the first round measures everything, the later
    ones the times and memory alone, and stop early at the time limit
    (:func:`merge_rounds` joins them). ``measure``: measure_column's stand-in
    (tests)."""
    measure = measure or measure_column
    rounds = [[]]
    longest = 0.0
    skipped = []
    workers = CPUTrainWorkers() if device.type == 'cpu' and not options.traffic_only \
        else None
    n_rounds = 1 if options.traffic_only else options.rounds
    try:
        for r in range(n_rounds):
            if r:
                rounds.append([])
            for i, col in enumerate(columns[:len(rounds[0])] if r else columns):
                elapsed = _clock() - start
                if options.time_limit is not None and elapsed + longest > options.time_limit:
                    if r:  # a later round is kept only whole
                        rounds.pop()
                        _log(f'--time-limit {options.time_limit:g} s: {elapsed:.0f} s used; '
                             f'{len(rounds)} of {n_rounds} timing rounds done')
                        return merge_rounds(rounds), skipped
                    skipped = columns[i:]
                    _log(f'--time-limit {options.time_limit:g} s: {elapsed:.0f} s used, the '
                         f'longest column took {longest:.0f} s; not measured: ' +
                         ', '.join(f'{c["group"]}/{c["label"]}' for c in skipped))
                    break
                _log(f'{col["group"]}: {col["label"]} ({col["config"]})'
                     + (f', round {r + 1} of {n_rounds}' if n_rounds > 1 else ''))
                t0 = _clock()
                rounds[r].append(measure(col, options, device, _log, workers,
                                         timing_only=r > 0))
                longest = max(longest, _clock() - t0)
    finally:
        if workers is not None:
            workers.close()
    return merge_rounds(rounds), skipped


# the timed figures of a record: (step, figure, all steps, per-round medians)
_TIMED = (('train', 'train_step_s', 'train_step_s_all', 'train_step_s_rounds'),
          ('infer', 'infer_s', 'infer_s_all', 'infer_s_rounds'))


def merge_rounds(rounds):
    """Records of the same columns over several rounds -> one record per
    column (the first round's), whose step times are the medians of every
    timed step of every round, with each round's median kept in
    ``<figure>_rounds`` (for the ratios' spread); peak memory: the highest."""
    merged = []
    for recs in zip(*rounds):
        rec = copy.deepcopy(recs[0])
        for step, key, all_key, rounds_key in _TIMED:
            for precision, fig in rec[step].items():
                if fig.get(key) is None:
                    continue
                per_round = [r[step][precision] for r in recs]
                fig[rounds_key] = [f[key] for f in per_round]
                if all(f.get(all_key) for f in per_round):
                    fig[all_key] = [t for f in per_round for t in f[all_key]]
                    fig[key] = statistics.median(fig[all_key])
                mems = [f.get('train_peak_memory_bytes') for f in per_round]
                if step == 'train' and None not in mems:
                    fig['train_peak_memory_bytes'] = max(mems)
        merged.append(rec)
    return merged


def _run(options, argv, device, columns, start):
    env = environment(options, device)
    _log(f'benchmark on {env["device"]}, torch {env["torch"]}')
    if device.type == 'cuda' and options.warmup < 2:
        _log(f'warning: --warmup {options.warmup} on CUDA times cuDNN autotuning and lazy '
             'initialisation; use --warmup 5 or more for figures you report')
    if load_warning(env):
        _log(load_warning(env))
    records, skipped = _measure_within_limit(columns, options, device, start)
    env['load_average_end'] = load_average()
    pairs = [] if options.traffic_only else make_pairs(records, env, options.precision,
                                                       device)
    check_complete(pairs, flops_counted=not options.skip_flops)
    how = methods(device, count_flops=not options.skip_flops)
    if options.traffic_only:  # nothing timed: only the size is measured besides
        how = {k: how[k] for k in ('params', 'flops')}
    if options.traffic:
        how['traffic'] = traffic_method()
    if options.inductor_kernels:
        how['inductor_kernels'] = inductor_kernels_method()
    result = dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  command=shlex.join(['python', 'tools/benchmark.py'] + list(argv)),
                  environment=env,
                  precisions=[] if options.traffic_only else options.precision,
                  methods=how, pairs=pairs,
                  traffic_pairs=make_traffic_pairs(records, env) if options.traffic else [],
                  models=records, time_limit_s=options.time_limit,
                  skipped=[{k: c[k] for k in ('group', 'label', 'config', 'options',
                                              'variant')} for c in skipped])
    text = render_markdown(result)
    print(text)
    _write(options.markdown, text)
    if options.out:
        _write(options.out, json.dumps(result, indent=1, allow_nan=False))
    return result


def _write(path, text):
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
