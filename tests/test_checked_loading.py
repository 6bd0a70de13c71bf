"""mmgscnn.datasets.transforms.checked_loading and checked_pipelines: mmseg's
loading transforms that name the bad file, and the swap that gives every
pipeline of a config these transforms with the model's classes."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from helpers import tiny_model
from mmgscnn.datasets.checked_pipelines import model_label_space, use_checked_loading
from mmgscnn.datasets.label_check import SegInputError


def results(img, label):
    return dict(img_path=str(img), seg_map_path=str(label), reduce_zero_label=False,
                label_map={5: 255}, seg_fields=[])


@pytest.fixture
def files(tmp_path):
    img = tmp_path / 'img.png'
    cv2.imwrite(str(img), np.full((6, 8, 3), 50, np.uint8))
    label = np.zeros((6, 8), np.uint8)
    label[:, 4:] = 5              # sent to 255 by the label map
    label[0, 0] = 2
    cv2.imwrite(str(tmp_path / 'label.png'), label)
    return img, tmp_path / 'label.png'


def load(files, num_classes, **paths):
    img, label = paths.get('img', files[0]), paths.get('label', files[1])
    r = TRANSFORMS.build(dict(type='CheckedLoadImageFromFile'))(results(img, label))
    return TRANSFORMS.build(dict(type='CheckedLoadAnnotations',
                                 num_classes=num_classes))(r)


def test_checked_loading_loads_as_mmseg_does(files):
    r = load(files, 3)
    plain = LoadAnnotations()(dict(results(*files), ori_shape=(6, 8)))
    assert np.array_equal(r['gt_seg_map'], plain['gt_seg_map'])
    assert r['img'].shape == (6, 8, 3) and r['seg_fields'] == ['gt_seg_map']


def test_checked_loading_names_the_bad_file(files, tmp_path):
    with pytest.raises(SegInputError, match=r'label\.png has values 2 \(1 px\) outside '
                       r'the 2 classes \(0\.\.1\)'):
        load(files, 2)
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    cut = tmp_path / 'cut.png'
    cut.write_bytes(files[0].read_bytes()[:60])
    for paths, message in ((dict(img=empty), r'image .*empty\.png is empty \(0 bytes\)'),
                           (dict(img=cut), r'image .*cut\.png cannot be decoded'),
                           (dict(label=empty), r'label .*empty\.png is empty'),
                           (dict(label=tmp_path / 'no.png'), r'label .*no\.png does not '
                                                             r'exist')):
        with pytest.raises(SegInputError, match=message) as err:
            load(files, 3, **paths)
        assert '\n' not in str(err.value) and 'tools/check_data.py' in str(err.value)


def test_every_pipeline_gets_checked_loading_with_the_model_classes():
    load_ann = dict(type='LoadAnnotations', reduce_zero_label=False)
    cfg = Config(dict(
        model=tiny_model(num_classes=7, ignore_index=250),
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
            pipeline=[dict(type='LoadImageFromFile'), dict(load_ann)]))),
        val_dataloader=dict(dataset=dict(pipeline=[
            dict(type='mmseg.LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[[dict(type='Resize', scale=(8, 8))],
                                                 [dict(load_ann)]])])),
        test_dataloader=dict(dataset=dict(pipeline=[
            dict(type='CheckedLoadAnnotations', num_classes=3)]))))
    assert model_label_space(cfg.model) == (7, 250)
    assert use_checked_loading(cfg) == 4      # the test pipeline is checked already
    train = cfg.train_dataloader.dataset.dataset.pipeline
    assert [t.type for t in train] == ['CheckedLoadImageFromFile', 'CheckedLoadAnnotations']
    assert train[1] == dict(type='CheckedLoadAnnotations', reduce_zero_label=False,
                            num_classes=7, ignore_index=250)
    tta = cfg.val_dataloader.dataset.pipeline
    assert tta[0].type == 'CheckedLoadImageFromFile'
    assert tta[1].transforms[1][0].type == 'CheckedLoadAnnotations'
    assert cfg.test_dataloader.dataset.pipeline[0].num_classes == 3   # the config's own
    # a GSCNN head config and a TTA model give the wrapped decoder's classes
    assert model_label_space(dict(decode_head=dict(
        type='GatedShapeHead', decoder=dict(num_classes=4)))) == (4, 255)
    assert model_label_space(dict(type='GSCNNTTAModel', module=cfg.model)) == (7, 250)
