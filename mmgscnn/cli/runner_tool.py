"""What tools/train.py and tools/test.py share: mmseg's common arguments and
a Runner built only after the dataset-folder check."""
from mmengine.runner import Runner

from mmgscnn.datasets.data_check import DatasetNotFoundError, check_dataset_folders
from mmgscnn.utils.config import add_common_args, export_local_rank


def parse_runner_args(parser, argv):
    """Add the arguments every Runner tool takes (``--work-dir``,
    ``--cfg-options``, ``--launcher``, ``--local-rank``) to ``parser``, parse
    ``argv`` and export ``LOCAL_RANK`` for mmengine."""
    add_common_args(parser)
    args = parser.parse_args(argv)
    export_local_rank(args)
    return args


def checked_runner(cfg, stage: str) -> Runner:
    """The Runner of ``cfg``, after checking the data folders its ``stage``
    ('train' or 'test') reads; a missing folder stops the program with a
    message that names it (no traceback, no work dir made)."""
    try:
        check_dataset_folders(cfg, stage)
    except DatasetNotFoundError as err:
        raise SystemExit(str(err)) from None
    return Runner.from_cfg(cfg)
