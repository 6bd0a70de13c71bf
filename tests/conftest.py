import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# One thread: tests also start subprocesses, and on a busy 2-core machine
# OpenMP threads that wait for each other make small convolutions far slower.
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(autouse=True, scope='session')
def _mmseg_scope():
    """Register mmseg's and mmgscnn's modules and make 'mmseg' the default
    scope, as a config's default_scope does."""
    import mmgscnn  # noqa: F401
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
