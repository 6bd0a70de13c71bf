"""What tools/train.py and tools/test.py share: mmseg's common arguments, a
Runner built only after the dataset-folder check, loading transforms that
check every image and label, and one-line errors for bad input."""
import contextlib
import re

from mmengine.runner import Runner

from mmgscnn.datasets.checked_pipelines import use_checked_loading
from mmgscnn.datasets.data_check import DatasetNotFoundError, check_dataset_folders
from mmgscnn.datasets.label_check import SegInputError
from mmgscnn.utils.config import add_common_args, export_local_rank
from mmgscnn.utils.config_errors import ConfigError
from mmgscnn.visualization.default_visualizer import use_boundary_visualizer

#: Errors of the user's data or config: reported in one line, no traceback.
USER_ERRORS = (SegInputError, ConfigError, FileNotFoundError)
# The last line of an error that torch's DataLoader re-raised from a worker
# ("<module>.SegInputError: <message>").
_WORKER_LINE = re.compile(r'^(?:[\w.]+\.)?\w+(?:Error|Exception): ')


def parse_runner_args(parser, argv):
    """Add the arguments every Runner tool takes (``--work-dir``,
    ``--cfg-options``, ``--launcher``, ``--local-rank``) to ``parser``, parse
    ``argv`` and export ``LOCAL_RANK`` for mmengine."""
    add_common_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def one_line(err: BaseException) -> str:
    """The message of ``err`` in one line; for an error re-raised from a data
    worker (its message holds the worker's traceback), the original message."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1 and 'Traceback' in str(err):
        return _WORKER_LINE.sub('', lines[-1].strip())
    return ' '.join(line.strip() for line in lines) or type(err).__name__


@contextlib.contextmanager
def user_errors(tool: str):
    """Turn :data:`USER_ERRORS` raised inside into ``SystemExit('<tool>: <one
    line>')`` (exit status 1, no traceback)."""
    try:
        yield
    except USER_ERRORS as err:
        raise SystemExit(f'{tool}: {one_line(err)}') from None


def checked_runner(cfg, stage: str) -> Runner:
    """The Runner of ``cfg``, after checking the data folders its ``stage``
    ('train' or 'test') reads; a missing folder stops the program with a
    message that names it (no traceback, no work dir made). Every dataloader
    pipeline gets the checked loading transforms (a bad image or label stops
    the run naming the file; see :mod:`mmgscnn.datasets.checked_pipelines`);
    a GSCNN model with mmseg's default visualizer draws boundary pictures
    (:mod:`mmgscnn.visualization.default_visualizer`); training saves and
    resumes torch's random state (:class:`mmgscnn.engine.RNGStateHook`)."""
    try:
        check_dataset_folders(cfg, stage)
    except DatasetNotFoundError as err:
        raise SystemExit(str(err)) from None
    use_checked_loading(cfg)
    hooks = list(cfg.get('custom_hooks') or [])
    if stage == 'train' and not any(h.get('type') == 'RNGStateHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='RNGStateHook')]  # resume = no interruption
    if use_boundary_visualizer(cfg):
        print('[mmgscnn] the model has a shape stream: pictures by SegBoundaryVisualizer '
              "(image | ground truth | prediction | boundary map) instead of mmseg's "
              'SegLocalVisualizer', flush=True)
    return Runner.from_cfg(cfg)
