"""mmgscnn.datasets.synthetic: SyntheticStreetDataset reads the generated
data (CamVid's layout, no id remapped), subsets of classes, and says how to
generate missing or mismatched data."""
import json
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS

from helpers import read_pair
from mmgscnn.datasets import CamVidDataset, CamVidLayoutDataset
from mmgscnn.datasets import synthetic_street_generator as gen
from mmgscnn.datasets.synthetic import CLASSES, PALETTE, SyntheticStreetDataset

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
CID = {c: i for i, c in enumerate(CLASSES)}


def test_dataset_reads_the_generated_data(synthetic_data):
    root, _ = synthetic_data
    ds = DATASETS.build(dict(type='SyntheticStreetDataset', data_root=root, pipeline=LOAD,
                             data_prefix=dict(img_path='val', seg_map_path='valannot')))
    # CamVid's layout and checks, not CamVid's unlabelled id
    assert isinstance(ds, CamVidLayoutDataset) and not isinstance(ds, CamVidDataset)
    assert ds.get_label_map() is None
    assert len(ds) == 4
    assert ds.metainfo['classes'] == CLASSES
    assert [list(c) for c in ds.metainfo['palette']] == PALETTE
    for i in range(4):
        item = ds[i]
        name = osp.basename(item['img_path'])
        assert name == osp.basename(item['seg_map_path']) == f'val_{i:04d}.png'
        img, label = read_pair(root, 'val', name)
        np.testing.assert_array_equal(item['img'], img[..., ::-1])  # BGR, as mmcv reads
        np.testing.assert_array_equal(item['gt_seg_map'], label)   # no id remapped


def test_dataset_with_a_subset_of_classes(synthetic_data):
    root, _ = synthetic_data
    ds = SyntheticStreetDataset(data_root=root, pipeline=LOAD,
                                metainfo=dict(classes=('road', 'pole')),
                                data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert ds.metainfo['palette'] == [PALETTE[CID['road']], PALETTE[CID['pole']]]
    item = ds[0]
    _, raw = read_pair(root, 'val', osp.basename(item['seg_map_path']))
    gt = item['gt_seg_map']
    np.testing.assert_array_equal(gt == 0, raw == CID['road'])
    np.testing.assert_array_equal(gt == 1, raw == CID['pole'])
    np.testing.assert_array_equal(gt == 255, (raw != CID['road']) & (raw != CID['pole']))


def test_dataset_errors_say_how_to_generate(synthetic_data, tmp_path):
    with pytest.raises(FileNotFoundError, match='generate_synthetic_data.py'):
        SyntheticStreetDataset(data_root=str(tmp_path / 'missing'),
                               data_prefix=dict(img_path='val', seg_map_path='valannot'))
    root = str(tmp_path / 'other')
    gen.generate(root, num_train=0, num_val=1, height=48, width=64)
    meta_path = osp.join(root, 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    meta['classes'] = meta['classes'][::-1]
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    with pytest.raises(ValueError, match='another generator version'):
        SyntheticStreetDataset(data_root=root,
                               data_prefix=dict(img_path='val', seg_map_path='valannot'))
