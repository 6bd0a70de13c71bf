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
    prepare_cpu_distributed(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def prepare_cpu_distributed(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work without CUDA (e.g. 2 CPU processes
    with torchrun): mmengine's launcher selects a CUDA device and its DDP
    wrapper passes ``device_ids``, both of which fail on a CPU-only torch.

    Without CUDA this starts the process group itself with the gloo backend
    (mmengine then keeps it), wraps the model in DDP without ``device_ids``,
    and replaces ``SyncBN`` by ``BN`` with a warning (torch's SyncBatchNorm
    only runs on GPUs). Does nothing when CUDA is there or no launcher is set.
    """
    import torch
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    from mmengine.logging import print_log
    if cfg.launcher != 'pytorch':
        raise SystemExit(f'--launcher {cfg.launcher} without CUDA is not supported; use '
                         '--launcher pytorch (tools/dist_train.sh) for CPU processes')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if 'SyncBN' in cfg.pretty_text:
        print_log('no CUDA: SyncBN replaced by BN (torch\'s SyncBatchNorm needs GPUs); '
                  'each CPU process normalises with its own batch', logger='current',
                  level=30)
        cfg.model = Config(dict(m=replace_syncbn(cfg.model.to_dict()))).m
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def shutdown_distributed() -> None:
    """Leave the process group cleanly at the end of a tool: every rank waits
    for the others, then the group is destroyed (exiting with a live gloo group
    can abort the process with "terminate called without an active exception")."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')


def replace_syncbn(obj):
    """A copy of the config dict/list ``obj`` with every norm layer of type
    ``SyncBN`` or ``MMSyncBN`` replaced by ``BN`` (for a single process or
    the CPU, where synchronised BN cannot run)."""
    if isinstance(obj, dict):
        return {k: ('BN' if k == 'type' and v in SYNC_BN_TYPES else replace_syncbn(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(replace_syncbn(v) for v in obj)
    return obj


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
