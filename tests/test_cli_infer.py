"""mmgscnn.cli.infer (tools/infer.py): pictures of a model's predictions,
compared with what SegBoundaryVisualizer draws, its options and errors."""
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.apis import inference_model
from mmseg.registry import MODELS

from helpers import TINY_CLASSES, tiny_model, write_images
from mmgscnn.cli import infer
from mmgscnn.visualization import SegBoundaryVisualizer
from mmgscnn.visualization.prediction_pictures import load_model

PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]


def write_model(tmp_path, gscnn=True):
    model_cfg = tiny_model(gscnn=gscnn)
    cfg = Config(dict(
        default_scope='mmseg',
        model=model_cfg,
        test_pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                       dict(type='PackSegInputs')]))
    cfg_path = str(tmp_path / f'tiny_{gscnn}.py')
    cfg.dump(cfg_path)
    model = MODELS.build(model_cfg)
    ckpt = str(tmp_path / f'tiny_{gscnn}.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': TINY_CLASSES, 'palette': PALETTE}}},
               ckpt)
    return cfg_path, ckpt


def expected_picture(cfg_path, ckpt, image_path, opacity=0.5, with_legend=True, **kwargs):
    """The picture SegBoundaryVisualizer draws of the model's prediction."""
    model = load_model(cfg_path, ckpt, 'cpu')
    result = inference_model(model, image_path)
    vis = SegBoundaryVisualizer(name='expected', alpha=opacity, **kwargs)
    vis.dataset_meta = dict(classes=TINY_CLASSES, palette=PALETTE)
    image = mmcv.imread(image_path, channel_order='rgb')
    picture = vis.draw_picture(image, result, draw_gt=False, with_legend=with_legend)
    return picture, result, image


def test_no_images_found_stops_the_tool(tmp_path):
    images = write_images(tmp_path / 'images', n=1)
    with pytest.raises(SystemExit, match='no images found'):
        infer.main(['c.py', 'c.pth', str(images / '*.jpg'), '--out-dir', str(tmp_path)])


def test_infer_writes_image_segmentation_boundary(tmp_path):
    cfg_path, ckpt = write_model(tmp_path)
    images = write_images(tmp_path / 'images')
    out = tmp_path / 'out'
    written = infer.main([cfg_path, ckpt, str(images / 'img0.png'), '--out-dir', str(out),
                          '--device', 'cpu'])
    assert written == [str(out / 'img0.png')]
    picture = cv2.imread(written[0])[..., ::-1]
    want, result, image = expected_picture(cfg_path, ckpt, str(images / 'img0.png'))
    np.testing.assert_array_equal(picture, want.image)
    # image | prediction | boundary, 32 px wide images upscaled to 480 px panels
    assert list(want.panels) == ['image', 'prediction', 'boundary probability']
    assert all(box[2:] == (480, 360) for box in want.panels.values())
    x, y, w, h = want.panels['image']
    np.testing.assert_array_equal(picture[y:y + h, x:x + w],
                                  cv2.resize(image, (480, 360), interpolation=cv2.INTER_LINEAR))
    x, y, w, h = want.panels['boundary probability']
    panel = picture[y:y + h, x:x + w].astype(int)
    assert (panel[..., 0] == panel[..., 1]).all() and (panel[..., 1] == panel[..., 2]).all()
    # the legend names the predicted classes; the colour bar is there
    predicted = np.unique(result.pred_sem_seg.data.numpy())
    assert want.legend == tuple(TINY_CLASSES[i] for i in predicted)
    assert set(want.keys) == {'legend', 'colour bar'}
    # a folder gives every image
    written = infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out / 'all')])
    assert written == [str(out / 'all' / 'img0.png'), str(out / 'all' / 'img1.png')]
    assert all(osp.isfile(p) for p in written)


def test_infer_options(tmp_path):
    cfg_path, ckpt = write_model(tmp_path)
    images = write_images(tmp_path / 'images', n=1)
    path = str(images / 'img0.png')
    written = infer.main([cfg_path, ckpt, path, '--out-dir', str(tmp_path / 'a'),
                          '--no-labels', '--opacity', '0.9', '--boundary-cmap', 'jet'])
    picture, _, _ = expected_picture(cfg_path, ckpt, path, opacity=0.9, with_legend=False,
                                     boundary_cmap='jet')
    assert list(picture.keys) == ['colour bar']
    np.testing.assert_array_equal(cv2.imread(written[0])[..., ::-1], picture.image)
    with pytest.raises(SystemExit, match='boundary_cmap'):
        infer.main([cfg_path, ckpt, path, '--out-dir', str(tmp_path / 'b'),
                    '--boundary-cmap', 'no-such-map'])


def test_infer_baseline_and_errors(tmp_path):
    cfg_path, ckpt = write_model(tmp_path, gscnn=False)
    images = write_images(tmp_path / 'images', n=1)
    out = tmp_path / 'out'
    written = infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out)])
    want, _, _ = expected_picture(cfg_path, ckpt, str(images / 'img0.png'))
    assert list(want.panels) == ['image', 'prediction']  # no boundary panel
    assert list(want.keys) == ['legend']
    np.testing.assert_array_equal(cv2.imread(written[0])[..., ::-1], want.image)
    with pytest.raises(SystemExit, match='config file .*nope.py'):
        infer.main([str(tmp_path / 'nope.py'), ckpt, str(images), '--out-dir', str(out)])
    with pytest.raises(SystemExit, match='checkpoint file .*nope.pth'):
        infer.main([cfg_path, str(tmp_path / 'nope.pth'), str(images), '--out-dir',
                    str(out)])
    with pytest.raises(SystemExit, match='opacity'):
        infer.main([cfg_path, ckpt, str(images), '--out-dir', str(out), '--opacity', '2'])
    # a checkpoint of the GSCNN model does not fit the baseline config
    _, gscnn_ckpt = write_model(tmp_path, gscnn=True)
    with pytest.raises(SystemExit, match='does not fit'):
        infer.main([cfg_path, gscnn_ckpt, str(images), '--out-dir', str(out)])
