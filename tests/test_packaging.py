"""Packaging: the plug-in declares the version ranges it works with (an
existing mmseg environment is kept by ``pip install -e .``), and
requirements/constraints.txt pins the tested stack that ``make setup``
installs."""
import importlib.metadata
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import mmseg
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
STACK = ('mmcv', 'mmengine', 'mmsegmentation')


def constraint_pins():
    """``{name: version}`` of the ``name==version`` lines of requirements/constraints.txt."""
    pins = {}
    for line in (REPO / 'requirements' / 'constraints.txt').read_text().splitlines():
        line = line.split('#')[0].strip()
        if '==' in line:
            req = Requirement(line)
            pins[req.name] = str(next(iter(req.specifier)).version)
    return pins


def by_name(requirements):
    return {req.name: req for req in map(Requirement, requirements)}


@pytest.fixture(scope='module')
def built_requires(tmp_path_factory):
    """Requirements in the metadata that ``pip install`` of this checkout writes
    (setup.py egg_info into a temporary folder)."""
    out = tmp_path_factory.mktemp('egg_info')
    subprocess.run([sys.executable, 'setup.py', '-q', 'egg_info', '--egg-base', str(out)],
                   cwd=str(REPO), check=True, capture_output=True, timeout=120)
    dist = importlib.metadata.PathDistribution(out / 'mmgscnn.egg-info')
    return by_name(dist.requires)


def assert_ranges(requires):
    for name in STACK:
        spec = requires[name].specifier
        assert spec, f'{name} is not constrained'
        assert not [s for s in spec if s.operator in ('==', '===')], f'{name} pinned: {spec}'


def test_metadata_declares_ranges_not_pins(built_requires):
    assert_ranges(built_requires)
    # mmcv: exactly the range mmseg itself asserts
    assert built_requires['mmcv'].specifier == SpecifierSet(
        f'>={mmseg.MMCV_MIN},<{mmseg.MMCV_MAX}')
    # an environment with a CUDA build of an older mmcv keeps it
    for kept in ('2.0.0rc4', '2.0.1', '2.1.0'):
        assert built_requires['mmcv'].specifier.contains(kept, prereleases=True)
    assert not built_requires['mmcv'].specifier.contains('2.2.0')
    # mmengine: inside mmseg's range
    spec = built_requires['mmengine'].specifier
    for version in ('0.4.0', '0.8.5', '0.10.7', '0.99.0', '1.0.0'):
        if spec.contains(version):
            assert Version(mmseg.MMENGINE_MIN) <= Version(version) < Version(
                mmseg.MMENGINE_MAX), version
    assert not built_requires['mmsegmentation'].specifier.contains('2.0.0')


def _made_by_make_setup():
    """Whether this interpreter is the environment ``make setup`` made
    (the one ``make test`` and CI use): it leaves a marker in the prefix."""
    return osp.isfile(osp.join(sys.prefix, '.mmgscnn-setup'))


def test_installed_metadata_has_no_pins():
    """What ``importlib.metadata`` reports for the installed mmgscnn (after
    ``make setup``, this checkout in editable mode)."""
    try:
        requires = importlib.metadata.requires('mmgscnn')
    except importlib.metadata.PackageNotFoundError:
        # make setup installs it: there (and so in CI) its absence is a failure
        assert not _made_by_make_setup(), 'make setup did not install mmgscnn'
        pytest.skip('mmgscnn is not installed (pip install -e .)')
    assert_ranges(by_name(requires))


def test_constraints_pin_the_tested_stack_inside_the_ranges(built_requires):
    pins = constraint_pins()
    assert set(STACK) <= set(pins), pins
    for name in STACK:
        assert built_requires[name].specifier.contains(pins[name], prereleases=True), name


def test_the_environment_of_make_setup_has_the_pinned_versions():
    if not _made_by_make_setup():
        pytest.skip('not the environment made by make setup')
    pins = constraint_pins()
    for name in STACK:
        assert importlib.metadata.version(name) == pins[name], name


FAKE_VENV_PYTHON = r'''#!/usr/bin/env bash
# Stand-in for the venv's python: records every call; `import mmcv...` works
# once an mmcv==... install was asked for; pip calls succeed.
printf '%s\n' "$*" >> "$CALLS"
if [ "$1" = -m ] && [ "$2" = pip ]; then
    case " $* " in *" mmcv=="*) touch "$STATE_DIR/mmcv" ;; esac
    exit 0
fi
if [ "$1" = -c ]; then
    case "$2" in *mmcv*) [ -f "$STATE_DIR/mmcv" ] || exit 1 ;; esac
    echo stand-in
fi
'''


def run_setup(tmp_path):
    venv = tmp_path / 'venv'
    return subprocess.run(
        ['bash', str(REPO / 'tools' / 'setup_env.sh')], capture_output=True, text=True,
        timeout=120, env=dict(os.environ, PYTHON=sys.executable, VENV=str(venv),
                              MMGSCNN_WHEELHOUSE=str(tmp_path / 'wheels'),
                              CALLS=str(tmp_path / 'calls'), STATE_DIR=str(tmp_path)))


def test_make_setup_installs_everything_through_the_constraints(tmp_path):
    """tools/setup_env.sh with a stand-in venv python: every pip install it
    runs carries requirements/constraints.txt, and the only version it names
    itself is mmcv's, read from that file."""
    (tmp_path / 'venv' / 'bin').mkdir(parents=True)
    (tmp_path / 'wheels').mkdir()
    fake = tmp_path / 'venv' / 'bin' / 'python'
    fake.write_text(FAKE_VENV_PYTHON)
    fake.chmod(0o755)

    proc = run_setup(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pips = [line.split() for line in (tmp_path / 'calls').read_text().splitlines()
            if line.startswith('-m pip install')]
    assert len(pips) >= 4
    for args in pips:
        i = args.index('-c')
        assert args[i + 1] == 'requirements/constraints.txt', args
    named_versions = [a for args in pips for a in args if '==' in a]
    assert named_versions == [f'mmcv=={constraint_pins()["mmcv"]}']
    mmcv_call = next(args for args in pips if named_versions[0] in args)
    assert '--find-links' in mmcv_call and str(tmp_path / 'wheels') in mmcv_call
    assert pips[-2][-4:] == ['-r', 'requirements/runtime.txt', '-r', 'requirements/tests.txt']
    assert pips[-1][-2:] == ['-e', '.']
    assert (tmp_path / 'venv' / '.mmgscnn-setup').is_file()

    # a second run finds everything in place
    proc = run_setup(tmp_path)
    assert proc.returncode == 0 and 'is up to date' in proc.stdout, proc.stdout
