"""mmgscnn: Gated-SCNN's shape stream as a plug-in for MMSegmentation 1.x.

Importing the package registers its modules into mmsegmentation's registries
(``MODELS``, ``DATASETS``, ``METRICS``, ``VISUALIZERS``), so configs can use
them after ``custom_imports = dict(imports=['mmgscnn'])``. It also lets
mmengine load its own checkpoints under torch >= 2.6 (see
:mod:`mmgscnn.utils.checkpoint_compat`).
"""
from .utils import patch_mmengine_checkpoint_loading

patch_mmengine_checkpoint_loading()

from . import models  # noqa: E402,F401
from . import datasets, engine, evaluation, visualization  # noqa: E402,F401

__version__ = '0.1.0'
