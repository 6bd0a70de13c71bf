"""mmgscnn.benchmark.groups: built-in groups, --configs groups, variants."""
import os.path as osp

import pytest

from mmgscnn.benchmark.groups import REPO, add_variants, resolve_config, select_groups
from mmgscnn.benchmark.options import BenchmarkOptions

GSCNN_PSP = 'configs/gscnn/gscnn-pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'


def test_default_groups_resolve_to_existing_files():
    groups = select_groups(BenchmarkOptions())
    assert [g for g, _ in groups] == ['deeplabv3plus', 'pspnet']
    for name, cols in groups:
        assert [c['label'] for c in cols] == ['baseline', 'dualtask', 'gscnn']
        assert all(osp.isfile(c['path']) for c in cols)
        assert all(c['group'] == name and c['options'] == {} and c['variant'] is None
                   for c in cols)


def test_configs_groups_take_labels_and_names(tmp_path, monkeypatch):
    for name in ('a.py', 'b.py'):
        (tmp_path / name).write_text('model = dict()\n')
    monkeypatch.chdir(tmp_path)
    groups = select_groups(BenchmarkOptions(configs=[['a.py', 'other=b.py'],
                                                     ['base=a.py', 'b.py']]))
    assert [g for g, _ in groups] == ['a', 'a-1']
    assert [c['label'] for c in groups[0][1]] == ['baseline', 'other']
    assert [c['label'] for c in groups[1][1]] == ['base', 'b']
    assert groups[0][1][1]['path'] == str(tmp_path / 'b.py')
    with pytest.raises(SystemExit, match='labels must differ'):
        select_groups(BenchmarkOptions(configs=[['x=a.py', 'x=b.py']]))


@pytest.mark.parametrize('options, message', [
    (dict(groups=['segformer']), "unknown group 'segformer'"),
    (dict(configs=[['missing_base.py', 'missing_other.py']]),
     "'missing_base.py' does not exist"),
    (dict(configs=[[osp.join(REPO, GSCNN_PSP)]]), 'needs a baseline config'),
    (dict(configs=[['mmseg::pspnet/nope.py', osp.join(REPO, GSCNN_PSP)]]),
     "'mmseg::pspnet/nope.py' does not exist"),
    (dict(configs=[['nopkg::a.py', osp.join(REPO, GSCNN_PSP)]]),
     "unknown package prefix 'nopkg'"),
])
def test_bad_groups_name_the_option_and_the_fix(options, message):
    with pytest.raises(SystemExit) as info:
        select_groups(BenchmarkOptions(**options))
    assert message in str(info.value)


def test_mmseg_paths_resolve_to_the_installed_configs():
    path = resolve_config('mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
                          REPO)
    assert osp.isfile(path)
    assert path.endswith('pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py')


def _columns():
    return [dict(group='g', label=label, config=f'{label}.py', path=f'/{label}.py',
                 options={'x': 1} if label == 'gscnn' else {}, variant=None)
            for label in ('baseline', 'dualtask', 'gscnn')]


def test_variants_follow_every_shape_stream_column():
    variants = [('s2', {'s': 2}), ('paper', {'low_res': False, 'x': 3})]
    cols = add_variants(_columns(), variants, lambda c: c['label'] == 'gscnn')
    assert [c['label'] for c in cols] == ['baseline', 'dualtask', 'gscnn', 'gscnn-s2',
                                         'gscnn-paper']
    assert [c['variant'] for c in cols] == [None, None, None, 's2', 'paper']
    # the variant's overrides come after the column's own
    assert cols[3]['options'] == {'x': 1, 's': 2}
    assert cols[4]['options'] == {'x': 3, 'low_res': False}
    assert cols[2]['options'] == {'x': 1} and cols[4]['config'] == 'gscnn.py'
    assert add_variants(_columns(), [], lambda c: True) == _columns()


def test_variant_label_clash_is_an_error():
    cols = _columns()
    cols[1]['label'] = 'gscnn-s2'
    with pytest.raises(SystemExit, match='choose another variant label'):
        add_variants(cols, [('s2', {'s': 2})], lambda c: c['label'] == 'gscnn')
