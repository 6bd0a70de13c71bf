"""tools/slurm_train.sh and tools/slurm_test.sh: the srun command they build,
read from a stand-in ``srun`` on PATH that records its arguments (no Slurm)."""
import os
import os.path as osp
import subprocess

import pytest

from mmgscnn.cli import test as cli_test
from mmgscnn.cli import train as cli_train

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SLURM_VARS = ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS')


def run_script(tmp_path, script, args, **env_vars):
    """Run tools/<script> with a fake srun; returns (process, srun's arguments)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / 'srun_args'
    srun = bin_dir / 'srun'
    srun.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$PYTHONPATH" "$@" > "$SRUN_LOG"\n')
    srun.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SLURM_VARS}
    env.update(PATH=f'{bin_dir}:{env["PATH"]}', SRUN_LOG=str(log), PYTHON='my-python',
               PYTHONPATH='/elsewhere', **env_vars)
    if log.exists():
        log.unlink()
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', script), *args], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=30)
    recorded = log.read_text().splitlines() if log.exists() else None
    return proc, recorded


def srun_options(gpus, per_node, cpus, partition='gpu', job='gscnn'):
    return ['-p', partition, f'--job-name={job}', f'--gres=gpu:{per_node}',
            f'--ntasks={gpus}', f'--ntasks-per-node={per_node}', f'--cpus-per-task={cpus}',
            '--kill-on-bad-exit=1']


def test_train_defaults_work_dir_and_options(tmp_path):
    proc, args = run_script(tmp_path, 'slurm_train.sh',
                            ['gpu', 'gscnn', 'my cfg.py', 'work dirs/x', '--resume',
                             '--cfg-options', 'a=1'])
    assert proc.returncode == 0, proc.stderr
    assert args[0] == f'{REPO}:/elsewhere'  # the checkout first on PYTHONPATH
    assert args[1:] == [
        *srun_options(4, 4, 5), 'my-python', '-u', osp.join(REPO, 'tools', 'train.py'),
        'my cfg.py', '--work-dir', 'work dirs/x', '--launcher', 'slurm', '--resume',
        '--cfg-options', 'a=1']
    assert proc.stderr.startswith('+ srun -p gpu')  # the command is echoed for the job log


def test_train_variables_and_srun_args(tmp_path):
    proc, args = run_script(tmp_path, 'slurm_train.sh', ['part', 'job', 'cfg.py', '--amp'],
                            GPUS='8', GPUS_PER_NODE='4', CPUS_PER_TASK='2',
                            SRUN_ARGS='--time=1:00:00  --mem=8G')
    assert proc.returncode == 0, proc.stderr
    assert args[1:] == [
        *srun_options(8, 4, 2, 'part', 'job'), '--time=1:00:00', '--mem=8G', 'my-python', '-u',
        osp.join(REPO, 'tools', 'train.py'), 'cfg.py', '--launcher', 'slurm', '--amp']

    # fewer GPUs than 4: one node with that many (no idle GPUs reserved)
    proc, args = run_script(tmp_path, 'slurm_train.sh', ['part', 'job', 'cfg.py'], GPUS='2')
    assert args[1:9] == srun_options(2, 2, 5, 'part', 'job')


def test_test_script(tmp_path):
    proc, args = run_script(tmp_path, 'slurm_test.sh',
                            ['gpu', 'eval', 'cfg.py', 'ck.pth', '--show-dir', 'vis'], GPUS='1')
    assert proc.returncode == 0, proc.stderr
    assert args[1:] == [
        *srun_options(1, 1, 5, job='eval'), 'my-python', '-u',
        osp.join(REPO, 'tools', 'test.py'), 'cfg.py', 'ck.pth', '--launcher', 'slurm',
        '--show-dir', 'vis']


@pytest.mark.parametrize('script,args,env,error', [
    ('slurm_train.sh', ['gpu', 'job'], {}, 'usage'),
    ('slurm_test.sh', ['gpu', 'job', 'cfg.py'], {}, 'usage'),
    ('slurm_train.sh', ['gpu', 'job', 'cfg.py'], {'GPUS': '0'}, 'GPUS must be'),
    ('slurm_train.sh', ['gpu', 'job', 'cfg.py'], {'GPUS_PER_NODE': 'four'},
     'GPUS_PER_NODE must be'),
    ('slurm_test.sh', ['gpu', 'job', 'cfg.py', 'ck.pth'], {'CPUS_PER_TASK': '-1'},
     'CPUS_PER_TASK must be')])
def test_bad_arguments_stop_before_srun(tmp_path, script, args, env, error):
    proc, recorded = run_script(tmp_path, script, args, **env)
    assert proc.returncode == 2
    assert error in proc.stderr
    assert recorded is None


@pytest.mark.parametrize('script,args,tool', [
    ('slurm_train.sh', ['gpu', 'job', 'cfg.py', 'wd', '--resume'], 'train'),
    ('slurm_test.sh', ['gpu', 'job', 'cfg.py', 'ck.pth', '--tta'], 'test')])
def test_the_tools_accept_the_command_they_get(tmp_path, script, args, tool):
    """The arguments srun hands to tools/train.py and tools/test.py parse, with
    the slurm launcher (mmengine then initialises from Slurm's variables)."""
    _, recorded = run_script(tmp_path, script, args)
    tool_path = osp.join(REPO, 'tools', f'{tool}.py')
    tool_args = recorded[recorded.index(tool_path) + 1:]
    parsed = dict(train=cli_train, test=cli_test)[tool].parse_args(tool_args)
    assert parsed.launcher == 'slurm' and parsed.config == 'cfg.py'
    if tool == 'train':
        assert parsed.work_dir == 'wd' and parsed.resume
    else:
        assert parsed.checkpoint == 'ck.pth' and parsed.tta
