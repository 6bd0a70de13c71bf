"""mmgscnn.experiments.accuracy_study and tools/accuracy_study.py: plans,
recipes, and the study end to end on tiny configs (plain and GSCNN) on the
CPU."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

from helpers import write_camvid_layout, write_study_config
from mmgscnn.experiments.accuracy_study import load_recipe, loader_options, plan_runs

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDY = osp.join(REPO, 'tools', 'accuracy_study.py')
CELL = re.compile(r'^-?\d+\.\d\d \(-?\d+\.\d\d\.\.-?\d+\.\d\d\)$')


def table_rows(text):
    """{metric: [cells]} of the Markdown table in ``text``."""
    rows = [line.strip('|').split('|') for line in text.splitlines()
            if line.startswith('| ') and not line.startswith(('| metric', '| ---'))]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows}


# --------------------------------------------------------------- plans

def test_plan_is_seed_major_with_options():
    plan = plan_runs(['a', 'b'], ['a.py', 'b.py'], [0, 1], 'work', cfg_options=['x=1'],
                     train_only_options=['y=2'], amp=True, num_workers=0, env={'E': '1'})
    assert [(n, s) for n, s, _ in plan] == [('a', 0), ('b', 0), ('a', 1), ('b', 1)]
    _, _, run = plan[3]
    assert run.config == 'b.py' and run.work_dir == osp.join('work', 'b', 'seed1')
    assert run.train_options == ['randomness.seed=1', 'x=1', 'train_dataloader.num_workers=0',
                                 'train_dataloader.persistent_workers=False', 'y=2']
    assert run.test_options == ['x=1', 'test_dataloader.num_workers=0',
                                'test_dataloader.persistent_workers=False']
    assert run.amp and run.env == {'E': '1'}
    assert loader_options(None, 'train_dataloader') == []
    assert loader_options(3, 'test_dataloader') == ['test_dataloader.num_workers=3']
    with pytest.raises(ValueError, match='names must differ'):
        plan_runs(['a', 'a'], ['a.py', 'b.py'], [0], 'work')


def test_recipe_file(tmp_path):
    path = tmp_path / 'recipe.py'
    path.write_text("configs = ['a.py']\njobs = 3\ntrain_only_options = ['x=1']\n")
    assert load_recipe(str(path)) == dict(configs=['a.py'], jobs=3, train_only_options=['x=1'])
    path.write_text("configs = ['a.py']\njob = 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['job'\]"):
        load_recipe(str(path))


# ----------------------------------------------------------- end to end


def study(args, cwd):
    return subprocess.run([sys.executable, STUDY, *args], cwd=str(cwd), capture_output=True,
                          text=True, check=True).stdout


def test_accuracy_study_end_to_end(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    configs = [write_study_config(tmp_path / 'plain.py', data_root, False),
               write_study_config(tmp_path / 'gscnn.py', data_root, True)]
    out, md, work = tmp_path / 'study.json', tmp_path / 'study.md', tmp_path / 'work'
    common = ['--configs', *configs, '--names', 'plain', 'gscnn', '--work-dir', str(work),
              '--out', str(out), '--markdown', str(md), '--jobs', '2',
              '--cfg-options', 'train_cfg.max_iters=2']
    printed = study([*common, '--seeds', '3'], tmp_path)
    result = json.loads(out.read_text())
    for key in ('date', 'device', 'torch', 'command'):
        assert result[key], key
    assert result['command'].startswith('tools/accuracy_study.py --configs')
    for name in ('plain', 'gscnn'):
        metrics = result['per_seed'][name]['3']
        for key in ('mIoU', 'mBF@1px', 'mBF@2px', 'mBIoU', 'mIoU@crop0', 'mIoU@crop4',
                    'IoU.bar@crop0'):
            assert result['summary'][name][key] == [metrics[key]] * 3  # one seed
        assert result['runs'][name]['3']['status'] == 'finished'
        assert (work / name / 'seed3' / 'iter_2.pth').is_file()
        assert 'randomness.seed=3' in (work / name / 'seed3' / 'run.log').read_text()
    # two jobs: the second run started before the first ended
    runs = [result['runs'][n]['3'] for n in ('plain', 'gscnn')]
    assert runs[1]['started'] < runs[0]['ended'] and runs[0]['started'] < runs[1]['ended']
    text = md.read_text()
    assert text.strip() in printed
    rows = table_rows(text)
    assert list(rows)[:4] == ['mIoU', 'mBF@1px', 'mBF@2px', 'mBIoU']
    assert all(CELL.match(c) for cells in rows.values() for c in cells), rows
    # Another call reuses the finished runs; with a time limit of one second,
    # the runs of a new seed are stopped or never start, and the report keeps
    # the finished ones.
    (work / 'plain' / 'seed3' / 'iter_2.pth').unlink()
    study([*common, '--seeds', '3', '4', '--time-limit', '1'], tmp_path)
    assert not (work / 'plain' / 'seed3' / 'iter_2.pth').exists()
    again = json.loads(out.read_text())
    assert again['per_seed'] == {n: {'3': result['per_seed'][n]['3']}
                                 for n in ('plain', 'gscnn')}
    assert {again['runs'][n]['3']['status'] for n in ('plain', 'gscnn')} == {'reused'}
    assert {again['runs'][n]['4']['status'] for n in ('plain', 'gscnn')} <= {'timed out',
                                                                             'not started'}
    text = md.read_text()
    assert 'Without results: plain seed 4 (' in text and table_rows(text) == rows


def test_study_refuses_bad_options(tmp_path):
    done = subprocess.run([sys.executable, STUDY, '--configs', 'nope.py', '--work-dir', 'w'],
                          cwd=str(tmp_path), capture_output=True, text=True)
    assert done.returncode == 2 and "config 'nope.py' does not exist" in done.stderr
    (tmp_path / 'a.py').write_text('')
    done = subprocess.run([sys.executable, STUDY, '--configs', 'a.py', '--work-dir', 'w',
                           '--jobs', '0'], cwd=str(tmp_path), capture_output=True, text=True)
    assert done.returncode == 2 and '--jobs must be >= 1' in done.stderr
