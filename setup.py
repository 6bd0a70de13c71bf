"""Installs the mmgscnn plug-in (``pip install -e .``).

Its requirements are the version ranges of ``requirements/runtime.txt``, so an
existing mmseg/mmcv environment inside them is kept; the exact versions of
``make setup`` are pinned in ``requirements/constraints.txt``.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` (comments dropped)."""
    lines = (HERE / 'requirements' / f'{name}.txt').read_text().splitlines()
    return [ln.split('#')[0].strip() for ln in lines if ln.split('#')[0].strip()]


setup(
    name='mmgscnn',
    version='0.1.0',
    description='Gated-SCNN shape stream as a plug-in for MMSegmentation 1.x',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmgscnn', 'mmgscnn.*']),
    python_requires='>=3.8',
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    license='Apache-2.0',
)
