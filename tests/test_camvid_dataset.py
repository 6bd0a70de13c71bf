"""mmgscnn.datasets.camvid: CamVidDataset reads CamVid's layout, maps the
unlabelled id to 255 and names missing folders and files."""
import os.path as osp

import numpy as np
import pytest

from helpers import write_camvid
from mmgscnn.datasets import CamVidDataset

CAMVID_PALETTE = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
                  [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
                  [64, 0, 128], [64, 64, 0], [0, 128, 192]]
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


def test_dataset_reads_the_layout_and_maps_unlabelled_to_255(tmp_path):
    labels = write_camvid(str(tmp_path))
    ds = CamVidDataset(data_root=str(tmp_path), pipeline=LOAD,
                       data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('sky', 'building', 'pole', 'road', 'sidewalk',
                                      'tree', 'sign-symbol', 'fence', 'car',
                                      'pedestrian', 'bicyclist')
    assert [list(c) for c in ds.metainfo['palette']] == CAMVID_PALETTE
    for i in range(2):
        item = ds[i]
        raw = labels[item['seg_map_path']]
        gt = item['gt_seg_map']
        assert osp.basename(item['img_path']) == osp.basename(item['seg_map_path'])
        assert item['img'].shape == (24, 32, 3)
        np.testing.assert_array_equal(gt[raw == 11], 255)
        np.testing.assert_array_equal(gt[raw != 11], raw[raw != 11])
        assert gt.max() == 255 and set(np.unique(gt)) <= set(range(11)) | {255}


def test_dataset_with_a_subset_of_classes(tmp_path):
    labels = write_camvid(str(tmp_path))
    ds = CamVidDataset(data_root=str(tmp_path), pipeline=LOAD,
                       metainfo=dict(classes=('road', 'car')),
                       data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert ds.metainfo['palette'] == [[128, 64, 128], [64, 0, 128]]
    item = ds[0]
    raw, gt = labels[item['seg_map_path']], item['gt_seg_map']
    np.testing.assert_array_equal(gt == 0, raw == 3)
    np.testing.assert_array_equal(gt == 1, raw == 8)
    np.testing.assert_array_equal(gt == 255, (raw != 3) & (raw != 8))


def test_dataset_names_a_missing_folder(tmp_path):
    write_camvid(str(tmp_path), splits=(('val', 1), ))
    with pytest.raises(FileNotFoundError, match=r"train.*does not exist.*trainannot"):
        CamVidDataset(data_root=str(tmp_path),
                      data_prefix=dict(img_path='train', seg_map_path='trainannot'))
    (tmp_path / 'valannot' / 'val_000.png').unlink()
    with pytest.raises(FileNotFoundError, match='val_000.png'):
        CamVidDataset(data_root=str(tmp_path),
                      data_prefix=dict(img_path='val', seg_map_path='valannot'))
