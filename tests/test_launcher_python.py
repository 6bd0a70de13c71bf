"""The interpreter tools/dist_*.sh and tools/slurm_*.sh run: $PYTHON when
set, else the project's .venv/bin/python when it exists, else python; read
from stand-in interpreters and srun that record how they were called."""
import os
import os.path as osp
import shutil
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECORD = '#!/usr/bin/env bash\nprintf "%s\\n" "$0" "$@" > "$RECORD_LOG"\n'


def stand_in(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORD)
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path):
    """A copy of tools/*.sh in a bare checkout, PATH with stand-in python and srun."""
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    for name in os.listdir(osp.join(REPO, 'tools')):
        if name.endswith('.sh'):
            shutil.copy(osp.join(REPO, 'tools', name), root / 'tools' / name)
    for name in ('python', 'srun'):
        stand_in(tmp_path / 'bin' / name)
    return root


def first_program(root, script, args, **env_vars):
    """The program a launcher script ends up running (srun: the interpreter it
    hands to srun)."""
    log = root.parent / 'log'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'GPUS')}
    env.update(PATH=f'{root.parent / "bin"}:{env["PATH"]}', RECORD_LOG=str(log), **env_vars)
    proc = subprocess.run(['bash', str(root / 'tools' / script), *args], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    called = log.read_text().splitlines()
    if osp.basename(called[0]) == 'srun':
        return next(a for a in called[1:] if not a.startswith('-') and '=' not in a
                    and a not in ('gpu', 'job'))
    return called[0]


LAUNCHES = [('dist_train.sh', ['cfg.py', '2']), ('dist_test.sh', ['cfg.py', 'c.pth', '2']),
            ('slurm_train.sh', ['gpu', 'job', 'cfg.py']),
            ('slurm_test.sh', ['gpu', 'job', 'cfg.py', 'c.pth'])]


@pytest.mark.parametrize('script,args', LAUNCHES, ids=[s for s, _ in LAUNCHES])
def test_launchers_prefer_python_then_venv_then_path(checkout, script, args):
    bin_python = str(checkout.parent / 'bin' / 'python')
    # no .venv: python from PATH (srun gets the name, torchrun runs the one found)
    assert first_program(checkout, script, args) in ('python', bin_python)
    venv_python = checkout / '.venv' / 'bin' / 'python'
    stand_in(venv_python)
    assert first_program(checkout, script, args) == str(venv_python)
    other = checkout.parent / 'other' / 'python3'
    stand_in(other)
    assert first_program(checkout, script, args, PYTHON=str(other)) == str(other)
