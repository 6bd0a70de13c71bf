"""Distributed training and testing on the CPU: tools/dist_train.sh and
tools/dist_test.sh start 2 processes (torchrun, gloo backend) on a tiny GSCNN
model; the metrics must gather the results of both processes.

Without CUDA, tools/train.py and tools/test.py start the gloo process group
themselves and wrap the model in DDP without device ids
(``mmgscnn.utils.config.prepare_cpu_distributed``); the test config does not
set any of that, so the test checks it.

SyncBN: ``torch.nn.SyncBatchNorm`` only synchronises CUDA (or XPU/HPU/
privateuse1) tensors; in a process group on the CPU its forward raises
``ValueError: SyncBatchNorm expected input tensor to be on GPU...``. So the
tools replace it by BN without CUDA (with a warning); each rank records what
SyncBN does on the CPU: the test fails if a torch version starts supporting
it, the cue to test SyncBN itself.
"""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import TINY_CLASSES, tiny_model, tiny_runner_config, write_camvid_layout
from mmgscnn.evaluation.metrics import BoundaryFScore

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
N_VAL = 5  # odd: DefaultSampler pads rank 1 with a repeated image; gathering must drop it
MAX_ITERS = 4

PROBE = textwrap.dedent('''
    """Probes of tests/test_distributed.py (written by the test)."""
    import json
    import os
    import os.path as osp

    import torch
    from mmengine.dist import get_rank, get_world_size
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmseg.registry import HOOKS, METRICS

    from mmgscnn.evaluation.metrics import BoundaryFScore


    def dump(name, obj):
        with open(osp.join(os.environ['PROBE_DIR'], name), 'w') as f:
            json.dump(obj, f)


    @METRICS.register_module()
    class ProbeBoundaryFScore(BoundaryFScore):
        """BoundaryFScore that records which images each rank evaluated and
        what rank 0 received after gathering."""

        def process(self, data_batch, data_samples):
            super().process(data_batch, data_samples)
            self.seen = getattr(self, 'seen', []) + [s['img_path'] for s in data_samples]
            dump(f'seen_rank{get_rank()}.json', self.seen)

        def compute_metrics(self, results):
            metrics = super().compute_metrics(results)
            counts = torch.stack([torch.as_tensor(r) for r in results]).sum(0)
            dump('gathered.json', dict(
                rank=get_rank(), world_size=get_world_size(), num_results=len(results),
                counts=counts.tolist(), metrics=metrics))
            return metrics


    @HOOKS.register_module()
    class ProbeHook(Hook):
        """Per rank: iterations run, losses, parameter checksum, SyncBN on CPU."""

        def before_train(self, runner):
            try:
                torch.nn.SyncBatchNorm(2).train()(torch.randn(2, 2, 3, 3))
                self.syncbn = 'ran'
            except Exception as e:  # noqa: BLE001  (recorded for the test)
                self.syncbn = f'{type(e).__name__}: {e}'
            self.losses = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.losses.append(float(outputs['loss']))

        def after_train(self, runner):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            params = torch.cat([p.detach().flatten().double() for p in model.parameters()])
            dump(f'train_rank{get_rank()}.json', dict(
                rank=get_rank(), world_size=get_world_size(),
                backend=torch.distributed.get_backend(), wrapper=type(runner.model).__name__,
                iters=runner.iter, losses=self.losses, syncbn=self.syncbn,
                stream_norm=type(model.decode_head.shape_stream.blocks[0].bn1).__name__,
                param_sum=float(params.sum()), param_abs=float(params.abs().sum())))
''')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_script(script, args, probe_dir, tmp):
    """Run tools/<script> with this interpreter; returns the completed process."""
    os.makedirs(probe_dir, exist_ok=True)
    # CPU processes (hide GPUs: a 1-GPU machine cannot give each rank its own),
    # one thread each (2 processes share the cores), the probe module importable.
    python_path = [str(tmp)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PROBE_DIR=str(probe_dir), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1', PYTHONPATH=os.pathsep.join(python_path))
    for key in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'RANK', 'LOCAL_RANK', 'WORLD_SIZE'):
        env.pop(key, None)
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args], cwd=str(tmp),
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-6000:])
    return proc


def read(path):
    with open(path) as f:
        return json.load(f)


def expected_gt_boundaries(data_root):
    """(C,) GT boundary pixels per class over the whole val set, one process."""
    metric = BoundaryFScore(tolerances=(1, 2))
    total = 0
    for name in sorted(os.listdir(osp.join(data_root, 'valannot'))):
        gt = torch.from_numpy(cv2.imread(osp.join(data_root, 'valannot', name),
                                         cv2.IMREAD_UNCHANGED).astype(np.int64))
        total = total + metric.image_counts(gt, gt, len(TINY_CLASSES))[0, :, 3]
    return total


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train the tiny GSCNN with tools/dist_train.sh on 2 CPU processes."""
    tmp = tmp_path_factory.mktemp('dist')
    (tmp / 'dist_probe.py').write_text(PROBE)
    data_root = write_camvid_layout(str(tmp / 'data'), n_train=8, n_val=N_VAL)
    # SyncBN, as the Cityscapes configs: without CUDA the tools switch it to BN
    model = tiny_model(shape_stream=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)))
    cfg = tiny_runner_config(tmp / 'work', data_root, model=model, max_iters=MAX_ITERS,
                             interval=MAX_ITERS, batch_size=2)
    evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                 dict(type='ProbeBoundaryFScore', tolerances=(1, 2))]
    cfg.merge_from_dict(dict(
        custom_imports=dict(imports=['mmgscnn', 'dist_probe'], allow_failed_imports=False),
        custom_hooks=[dict(type='ProbeHook')],
        val_evaluator=evaluator, test_evaluator=evaluator,
        test_dataloader=cfg.val_dataloader, test_cfg=dict(type='TestLoop')))
    cfg.env_cfg.dist_cfg.backend = 'nccl'  # as mmseg's runtime: the tools switch to gloo
    config = str(tmp / 'tiny_gscnn_dist.py')
    cfg.dump(config)
    run_script('dist_train.sh', [config, '2', '--work-dir', str(tmp / 'work')],
               tmp / 'probe_train', tmp)
    return tmp, config, data_root


def test_dist_train_runs_both_ranks_in_step(trained):
    tmp, _, _ = trained
    ranks = [read(tmp / 'probe_train' / f'train_rank{r}.json') for r in (0, 1)]
    for r, rec in enumerate(ranks):
        assert (rec['rank'], rec['world_size'], rec['backend']) == (r, 2, 'gloo')
        assert rec['wrapper'] == 'MMDistributedDataParallel'
        assert rec['iters'] == MAX_ITERS and len(rec['losses']) == MAX_ITERS
        assert all(np.isfinite(rec['losses']))
        # SyncBN does not run on CPU tensors (why the shape stream uses BN here)
        assert rec['syncbn'].startswith('ValueError') and 'GPU' in rec['syncbn'], rec['syncbn']
        assert rec['stream_norm'] == 'BatchNorm2d'  # SyncBN replaced for the CPU
    # Each rank trained on its own batches ...
    assert ranks[0]['losses'] != ranks[1]['losses']
    # ... and DDP averaged the gradients: the weights are equal on both ranks.
    assert ranks[0]['param_sum'] == pytest.approx(ranks[1]['param_sum'], rel=1e-9)
    assert ranks[0]['param_abs'] == pytest.approx(ranks[1]['param_abs'], rel=1e-9)
    assert osp.isfile(tmp / 'work' / f'iter_{MAX_ITERS}.pth')


def check_gathered(probe_dir, data_root):
    """Both ranks evaluated part of the val set; rank 0 got every image once."""
    seen = [read(probe_dir / f'seen_rank{r}.json') for r in (0, 1)]
    names = sorted(osp.join(data_root, 'val', n) for n in os.listdir(osp.join(data_root, 'val')))
    assert len(names) == N_VAL
    assert all(0 < len(s) <= (N_VAL + 1) // 2 for s in seen), seen
    assert sorted(set(seen[0]) | set(seen[1])) == names
    gathered = read(probe_dir / 'gathered.json')
    assert (gathered['rank'], gathered['world_size']) == (0, 2)
    assert gathered['num_results'] == N_VAL  # not 3 (rank 0 alone), not 6 (padding)
    gt_pixels = np.array(gathered['counts'])[0, :, 3]
    np.testing.assert_array_equal(gt_pixels, expected_gt_boundaries(data_root).numpy())
    return gathered['metrics']


def test_boundary_metric_gathers_both_ranks_during_training(trained):
    tmp, _, data_root = trained
    metrics = check_gathered(tmp / 'probe_train', data_root)
    assert set(metrics) == {'mBF@1px', 'mBF@2px'}


def test_dist_test_gathers_both_ranks_and_matches_one_process(trained, tmp_path):
    tmp, config, data_root = trained
    ckpt = str(tmp / 'work' / f'iter_{MAX_ITERS}.pth')
    run_script('dist_test.sh', [config, ckpt, '2', '--work-dir', str(tmp / 'work_test')],
               tmp / 'probe_test', tmp)
    dist_metrics = check_gathered(tmp / 'probe_test', data_root)

    # The same checkpoint evaluated by one process gives the same boundary F-scores.
    cfg = Config.fromfile(config, import_custom_modules=False)
    for key in ('custom_imports', 'custom_hooks'):
        cfg.pop(key)
    cfg.test_evaluator = [dict(type='BoundaryFScore', tolerances=(1, 2))]
    cfg.work_dir = str(tmp_path)
    cfg.load_from = ckpt
    single = Runner.from_cfg(cfg).test()
    assert single == pytest.approx(dist_metrics)


def test_dist_scripts_check_their_arguments(tmp_path):
    for script, args in (('dist_train.sh', ['cfg.py']), ('dist_train.sh', ['cfg.py', 'x']),
                         ('dist_test.sh', ['cfg.py', 'ckpt.pth']),
                         ('dist_test.sh', ['cfg.py', 'ckpt.pth', '0'])):
        proc = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args],
                              cwd=str(tmp_path), capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, PYTHON='false'))
        assert proc.returncode == 2, (script, args, proc.stderr)
        assert 'usage' in proc.stderr or 'GPUS must be' in proc.stderr


@pytest.mark.parametrize('script,args,tool', [
    ('dist_train.sh', ['my cfg.py', '4', '--resume', '--cfg-options', 'a=1'], 'train.py'),
    ('dist_test.sh', ['my cfg.py', 'ck.pth', '4', '--show-dir', 'vis'], 'test.py')])
def test_dist_scripts_pass_the_node_variables_to_torchrun(tmp_path, script, args, tool):
    """With a stand-in interpreter that prints its arguments: the torchrun
    command line of node 1 of 2."""
    fake = tmp_path / 'fake_python'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$PYTHONPATH" "$@"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), NNODES='2', NODE_RANK='1',
               MASTER_ADDR='10.1.2.3', PORT='29123', PYTHONPATH='/elsewhere')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f'{REPO}:/elsewhere'
    n_pos = 2 if tool == 'train.py' else 3
    assert lines[1:] == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.1.2.3', '--master_port=29123', '--nproc_per_node=4',
        osp.join(REPO, 'tools', tool), *args[:n_pos - 1], '--launcher', 'pytorch',
        *args[n_pos:]]
