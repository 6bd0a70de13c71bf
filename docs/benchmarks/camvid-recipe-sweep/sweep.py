"""The CamVid CPU recipe of docs/benchmarks.md (DeepLabV3+ R18-D8 from
scratch, 1000 iterations of batch 4 on 180x240 crops, tested at 360x480) for
several variants of the code side by side on one device: a diagnostic of
which change of 2026-11-26 moves the mIoU (docs/benchmarks.md, "Which change
moves the mIoU"). Not part of the package; kept so the figures can be re-made.

Prepare, from the repository root (both folders are ignored by git):
    git archive 24e37ff mmgscnn configs tools | (mkdir -p data/oldcode && tar -x -C data/oldcode)
    python tools/downscale_camvid.py --src <CamVid> --out-dir data/camvid-360x480-jpg \
        --size 360 480 --jpeg-quality 85
Run (from the repository root, mmgscnn's dependencies installed):
    python docs/benchmarks/camvid-recipe-sweep/sweep.py --out DIR --jobs 16 --seeds 0 1 2
--tiny trains 2 iterations and tests 3 images (a check of the plumbing).
"""
import argparse
import concurrent.futures as cf
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', '..'))
SWEEP = osp.dirname(osp.abspath(__file__))
OLD = osp.join(REPO, 'data', 'oldcode')
DATA = osp.join(REPO, 'data', 'camvid-360x480-jpg')
NEW_GSCNN = 'configs/gscnn/gscnn-deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py'
VAR_GSCNN = 'docs/benchmarks/camvid-recipe-sweep/gscnn-variants.py'
NEW_BASE = 'configs/deeplabv3plus/deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py'
OLD_GSCNN = 'configs/camvid/gscnn_deeplabv3plus_r18-d8_camvid.py'
S = 'model.shape_head.'
LAYOUT = [S + 'shape_stream.first_block_low_res=False', S + 'shape_stream.stem_channels=0']
OLDDT = [S + 'loss_dual_task.type=OldDualTaskLoss']
# name: (code dir, config, options, env)
VARIANTS = {
    'new': (REPO, NEW_GSCNN, [], {}),
    'old': (OLD, OLD_GSCNN, [], {}),
    'allold': (REPO, VAR_GSCNN, LAYOUT + OLDDT + [S + 'shape_stream.with_cp=True'],
               {'SWEEP_NOBAND': '1'}),
    'layout': (REPO, NEW_GSCNN, LAYOUT, {}),
    'olddt': (REPO, VAR_GSCNN, OLDDT, {}),
    'noband': (REPO, VAR_GSCNN, [], {'SWEEP_NOBAND': '1'}),
    'baseline': (REPO, NEW_BASE, [], {}),
    'nodt': (REPO, NEW_GSCNN, [S + 'loss_dual_task=None'], {}),
}
RECIPE = ['train_dataloader.dataset.pipeline.2.ratio_range=(0.5,1.0)',
          'train_dataloader.dataset.pipeline.3.crop_size=(180,240)',
          'model.data_preprocessor.size=(180,240)', 'train_dataloader.batch_size=4',
          'train_cfg.val_interval=100000', 'default_hooks.logger.interval=50',
          'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
CLASSES = ['sky', 'building', 'pole', 'road', 'sidewalk', 'tree', 'sign-symbol', 'fence',
           'car', 'pedestrian', 'bicyclist']


def run(cmd, cwd, env, log, deadline):
    with open(log, 'a') as f:
        f.write('$ ' + ' '.join(cmd) + '\n')
        f.flush()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
        while p.poll() is None:
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                raise TimeoutError('time limit')
            time.sleep(1)
    if p.returncode:
        raise RuntimeError(f'exit {p.returncode}')


def one(name, seed, args, deadline):
    code, config, opts, extra_env = VARIANTS[name]
    if time.monotonic() > deadline - 60:
        return dict(name=name, seed=seed, status='not started')
    wd = osp.join(args.work_dir, name, f'seed{seed}')
    os.makedirs(wd, exist_ok=True)
    log = osp.join(wd, 'run.log')
    env = dict(os.environ, **extra_env, CAMVID_ROOT=DATA, OMP_NUM_THREADS=os.environ.get('SWEEP_OMP', '2'),
               PYTHONPATH=os.pathsep.join([code, SWEEP] + [p for p in os.environ.get(
                   'PYTHONPATH', '').split(os.pathsep) if p and p != REPO]))
    iters = 2 if args.tiny else 1000
    train = [sys.executable, 'tools/train.py', config, '--work-dir', wd, '--cfg-options',
             f'randomness.seed={seed}', *RECIPE, f'train_cfg.max_iters={iters}',
             f'param_scheduler.0.end={iters}', f'default_hooks.checkpoint.interval={iters}',
             f'train_dataloader.num_workers={args.num_workers}',
             'train_dataloader.dataset.img_suffix=.jpg', *opts]
    metrics = osp.join(wd, 'metrics.json')
    test = [sys.executable, 'tools/test.py', config, osp.join(wd, f'iter_{iters}.pth'),
            '--work-dir', osp.join(wd, 'test'), '--metrics-out', metrics, '--cfg-options',
            'test_evaluator.2.class_keys=True', f'test_dataloader.num_workers={args.num_workers}',
            'test_dataloader.dataset.img_suffix=.jpg', *opts]
    if args.tiny:
        test.append('test_dataloader.dataset.indices=3')
    t0 = time.monotonic()
    try:
        run(train, code, env, log, deadline)
        t1 = time.monotonic()
        run(test, code, env, log, deadline)
    except Exception as e:  # noqa
        print(f'[sweep] {name} seed {seed}: {e}', flush=True)
        return dict(name=name, seed=seed, status=str(e), seconds=time.monotonic() - t0)
    with open(metrics) as f:
        m = json.load(f)
    print(f'[sweep] {name} seed {seed}: mIoU {m.get("mIoU")} ({time.monotonic() - t0:.0f} s)',
          flush=True)
    return dict(name=name, seed=seed, status='done', train_s=t1 - t0,
                seconds=time.monotonic() - t0, metrics=m)


def cls_iou(m, c):
    for k in (f'whole/IoU.{c}@crop0', f'IoU.{c}@crop0'):
        if k in m:
            return m[k]
    return float('nan')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'sweep'))
    p.add_argument('--variants', nargs='+', default=list(VARIANTS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--jobs', type=int, default=8)
    p.add_argument('--num-workers', type=int, default=1)
    p.add_argument('--time-limit', type=float, default=500)
    p.add_argument('--tiny', action='store_true')
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    deadline = time.monotonic() + args.time_limit
    plan = [(n, s) for s in args.seeds for n in args.variants]
    results = []
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(lambda ns: one(*ns, args, deadline), plan):
            results.append(r)
            with open(osp.join(args.out, 'sweep.json'), 'w') as f:
                json.dump(dict(results=results), f, indent=1)
    import torch
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'
    head = (f'device {dev}, torch {torch.__version__}, fp32, batch 4, crop 180x240, '
            '1000 iterations, test 360x480 (CamVid JPEG q85 copy)')
    rows = ['| variant | seed | mIoU | mBF@3px | car | sidewalk | pedestrian | train s |',
            '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in results:
        if r['status'] != 'done':
            rows.append(f"| {r['name']} | {r['seed']} | {r['status']} | | | | | |")
            continue
        m = r['metrics']
        rows.append(f"| {r['name']} | {r['seed']} | {m['mIoU']:.2f} | {m.get('mBF@3px', float('nan')):.2f} | "
                    f"{cls_iou(m, 'car'):.2f} | {cls_iou(m, 'sidewalk'):.2f} | "
                    f"{cls_iou(m, 'pedestrian'):.2f} | {r['train_s']:.0f} |")
    rows.append('')
    rows.append('| variant | n | mean mIoU | min | max | mean car | mean sidewalk |')
    rows.append('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for n in args.variants:
        ms = [r['metrics'] for r in results if r['name'] == n and r['status'] == 'done']
        if ms:
            v = [m['mIoU'] for m in ms]
            rows.append(f'| {n} | {len(v)} | {sum(v) / len(v):.2f} | {min(v):.2f} | {max(v):.2f} | '
                        f"{sum(cls_iou(m, 'car') for m in ms) / len(ms):.2f} | "
                        f"{sum(cls_iou(m, 'sidewalk') for m in ms) / len(ms):.2f} |")
    text = head + '\n\n' + '\n'.join(rows)
    with open(osp.join(args.out, 'sweep.md'), 'w') as f:
        f.write(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
