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


@pytest.fixture(autouse=True)
def _fresh_constants():
    """Every test builds the cached filter banks and weights afresh (a
    mutation run forks after a first run has filled the cache)."""
    from mmgscnn.models.utils.constants import clear_constants
    clear_constants()


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """SyntheticStreet written once per session: 10 train + 4 val images at
    the generator's default size (120x160), seed 3 -> (root, meta)."""
    from mmgscnn.datasets import synthetic_street_generator as gen
    root = str(tmp_path_factory.mktemp('synthetic'))
    return root, gen.generate(root, num_train=10, num_val=4, seed=3)
