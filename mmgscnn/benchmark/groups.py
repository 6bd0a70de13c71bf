"""Model groups: a baseline config and the configs compared with it. A
column is one model of a group: dict(group, label, config, path, options,
variant); ``options`` are config overrides, ``variant`` the ``--variant``
label that added them (None for the config as it is)."""
import os
import os.path as osp

from .options import BenchmarkError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# group -> [(label, config)]; the first is the baseline. Relative paths are
# relative to the repository root.
GROUPS = {
    'deeplabv3plus': [
        ('baseline',
         'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('dualtask', 'configs/dual_task/dual-task-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('gscnn', 'configs/gscnn/gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ],
    'pspnet': [
        ('baseline', 'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('dualtask', 'configs/dual_task/dual-task-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
        ('gscnn', 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    ],
}


def resolve_config(path, base_dir):
    """A config file path, or ``pkg::rel/path.py`` (mmengine's notation for a
    config shipped with a package, e.g. mmseg's) -> an existing file path."""
    if '::' in path:
        from mmengine.config.utils import MODULE2PACKAGE
        from mmengine.utils import get_installed_path
        prefix, rel = path.split('::', 1)
        if prefix not in MODULE2PACKAGE:
            raise BenchmarkError(f'config {path!r}: unknown package prefix {prefix!r}; '
                                 'use a file path or mmseg::<folder>/<file>.py')
        full = osp.join(get_installed_path(MODULE2PACKAGE[prefix]), '.mim', 'configs', rel)
    else:
        full = path if osp.isabs(path) else osp.join(base_dir, path)
    if not osp.isfile(full):
        raise BenchmarkError(f'config {path!r} does not exist (looked for {full}); pass '
                             'an existing config file, or an mmseg:: path such as '
                             "'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'")
    return full


def _column(group, label, config, path):
    return dict(group=group, label=label, config=config, path=path, options={},
                variant=None)


def select_groups(options):
    """``--groups`` and ``--configs`` -> [(group name, [column])]; all
    built-in groups when neither is given."""
    names = options.groups
    if names is None and options.configs is None:
        names = list(GROUPS)
    groups = []
    for name in names or []:
        if name not in GROUPS:
            raise BenchmarkError(f'--groups: unknown group {name!r}; known groups: '
                                 f'{", ".join(GROUPS)} (or give your own configs with '
                                 '--configs BASELINE OTHER ...)')
        groups.append((name, [_column(name, label, cfg, resolve_config(cfg, REPO))
                              for label, cfg in GROUPS[name]]))
    for i, specs in enumerate(options.configs or []):
        if len(specs) < 2:
            raise BenchmarkError(f'--configs {" ".join(specs)}: a group needs a baseline '
                                 'config and at least one config to compare with it')
        name = osp.splitext(osp.basename(specs[0].partition('=')[2] or specs[0]))[0]
        if any(name == g for g, _ in groups):
            name = f'{name}-{i}'
        cols = []
        for j, spec in enumerate(specs):
            label, sep, cfg = spec.partition('=')
            if not sep:
                cfg = spec
                label = 'baseline' if j == 0 else osp.splitext(osp.basename(spec))[0]
            cols.append(_column(name, label, cfg, resolve_config(cfg, os.getcwd())))
        labels = [c['label'] for c in cols]
        if len(set(labels)) != len(labels):
            raise BenchmarkError(f'--configs {" ".join(specs)}: labels must differ, got '
                                 f'{labels}; name them LABEL=CONFIG')
        groups.append((name, cols))
    return groups


def add_variants(columns, variants, has_shape_stream):
    """After every column with a shape stream (``has_shape_stream(column)``),
    one copy per variant ``(label, overrides)``, labelled
    ``<column label>-<variant label>``, its options updated by the overrides."""
    out = []
    for col in columns:
        out.append(col)
        if variants and has_shape_stream(col):
            out += [dict(col, label=f'{col["label"]}-{label}', variant=label,
                         options=dict(col['options'], **overrides))
                    for label, overrides in variants]
    for group in dict.fromkeys(c['group'] for c in out):
        labels = [c['label'] for c in out if c['group'] == group]
        if len(set(labels)) != len(labels):
            raise BenchmarkError(f'group {group}: a --variant copy has the label of '
                                 f'another column ({labels}); choose another variant label')
    return out
