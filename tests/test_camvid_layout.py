"""CamVidLayoutDataset, the common base of CamVidDataset and SyntheticStreetDataset."""
import os

import cv2
import numpy as np
import pytest

from mmgscnn.datasets import CamVidDataset, CamVidLayoutDataset, SyntheticStreetDataset

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


class ShapesDataset(CamVidLayoutDataset):
    METAINFO = dict(classes=('background', 'box', 'disc'),
                    palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]])
    DATA_NAME = 'Shapes'

    def data_hint(self):
        return 'Draw it with draw_shapes().'


def write_split(root, split, labels):
    os.makedirs(root / split, exist_ok=True)
    os.makedirs(root / (split + 'annot'), exist_ok=True)
    for i, label in enumerate(labels):
        cv2.imwrite(str(root / split / f'{i}.png'), np.dstack([label * 80] * 3))
        cv2.imwrite(str(root / (split + 'annot') / f'{i}.png'), label)


def test_subclass_reads_pairs_and_keeps_ids(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[1:3, 2:5], label[4:, 6:] = 1, 2
    write_split(tmp_path, 'val', [label, label[::-1].copy()])
    ds = ShapesDataset(data_root=str(tmp_path), pipeline=LOAD,
                       data_prefix=dict(img_path='val', seg_map_path='valannot'))
    assert len(ds) == 2 and ds.get_label_map() is None
    np.testing.assert_array_equal(ds[1]['gt_seg_map'], label[::-1])
    # a subset of classes: the others become 255, as in BaseSegDataset
    sub = ShapesDataset(data_root=str(tmp_path), pipeline=LOAD,
                        metainfo=dict(classes=('disc', )),
                        data_prefix=dict(img_path='val', seg_map_path='valannot'))
    np.testing.assert_array_equal(sub[0]['gt_seg_map'], np.where(label == 2, 0, 255))


def test_errors_name_the_data_and_the_hint(tmp_path):
    prefix = dict(img_path='train', seg_map_path='trainannot')
    with pytest.raises(FileNotFoundError, match=r"Shapes image folder .*train' does not exist"
                                                r".*Draw it with draw_shapes\(\)"):
        ShapesDataset(data_root=str(tmp_path), data_prefix=prefix)
    (tmp_path / 'train').mkdir()
    (tmp_path / 'trainannot').mkdir()
    with pytest.raises(FileNotFoundError, match=r'holds no \*.png files. Draw it'):
        ShapesDataset(data_root=str(tmp_path), data_prefix=prefix)
    write_split(tmp_path, 'train', [np.zeros((4, 4), np.uint8)] * 2)
    os.remove(tmp_path / 'trainannot' / '1.png')
    with pytest.raises(FileNotFoundError, match=r'1 Shapes label files are missing, .*1.png'):
        ShapesDataset(data_root=str(tmp_path), data_prefix=prefix)
    with pytest.raises(ValueError, match='ShapesDataset maps .* to 255.*ignore_index=3'):
        ShapesDataset(data_root=str(tmp_path), data_prefix=prefix, ignore_index=3)


def test_camvid_and_synthetic_share_the_base_not_each_other():
    assert issubclass(CamVidDataset, CamVidLayoutDataset)
    assert issubclass(SyntheticStreetDataset, CamVidLayoutDataset)
    assert not issubclass(SyntheticStreetDataset, CamVidDataset)
    assert CamVidDataset.get_label_map() == {11: 255}
    assert CamVidDataset.get_label_map(('road', 'car'))[3] == 0
    assert SyntheticStreetDataset.get_label_map() is None
