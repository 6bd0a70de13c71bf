"""Config loading shared by the command-line tools."""
import os
import os.path as osp

from mmengine.config import Config


def load_config(path: str, cfg_options=None, work_dir=None, launcher='none') -> Config:
    """Load ``path`` like mmseg's tools do: ``--cfg-options`` merged, work dir
    from the command line, else the config, else ``work_dirs/<config name>``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist; pass the path of a '
                                f'config, e.g. configs/gscnn/deeplabv3plus_r101_cityscapes.py')
    import mmgscnn  # noqa: F401  (registers the plug-in even without custom_imports)
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def add_common_args(parser):
    """Arguments every tool takes, with mmseg's names and meaning."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (pytorch: torchrun)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def export_local_rank(args):
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
