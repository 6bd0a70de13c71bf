"""mmgscnn.deploy.onnx_export: onnxruntime against the PyTorch model's own
inference (data preprocessor, predict) on CPU, and the errors of bad input."""
import os.path as osp

import numpy as np
import pytest

from mmgscnn.deploy import compare_with_onnxruntime, export_onnx, load_segmentor
from onnx_helpers import (MAX_ABS, MIN_AGREEMENT, SHAPE, assert_close, bgr_images,
                          pytorch_reference, run_onnx, write_model)
from helpers import tiny_model


def test_gscnn_export_matches_pytorch_with_dynamic_batch(tmp_path):
    config, checkpoint = write_model(tmp_path, tiny_model('sepaspp'))
    model = load_segmentor(config, checkpoint)
    out = osp.join(tmp_path, 'sub', 'gscnn.onnx')
    module = export_onnx(model, SHAPE, out)  # traced with a batch of 1

    images = bgr_images(2)  # run with a batch of 2
    session, (onnx_seg, onnx_boundary) = run_onnx(out, images)
    seg, boundary = pytorch_reference(model, images)
    assert_close(onnx_seg, seg, onnx_boundary, boundary)
    # the boundary is a probability map that depends on the image
    assert 0 <= onnx_boundary.min() and onnx_boundary.max() <= 1
    assert onnx_boundary.std() > 1e-3

    assert [i.name for i in session.get_inputs()] == ['image']
    assert [o.name for o in session.get_outputs()] == ['seg_logits', 'boundary']
    batch, *rest = session.get_inputs()[0].shape
    assert isinstance(batch, str) and rest == [3, *SHAPE]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta['classes'] == '["background", "box", "disc", "bar"]'

    # the tool's own check reports the same agreement
    stats = compare_with_onnxruntime(module, out, bgr_images(3, seed=1).float())
    assert stats['seg_logits']['max_abs'] <= MAX_ABS
    assert stats['seg_logits']['argmax_agreement'] >= MIN_AGREEMENT
    assert stats['boundary']['max_abs'] <= MAX_ABS


def test_channel_order_and_normalisation_are_in_the_graph(tmp_path):
    """Feeding the image with its channels swapped changes the output: the
    graph converts BGR to RGB itself, as the data preprocessor does."""
    config, checkpoint = write_model(tmp_path, tiny_model('fcn', gscnn=False))
    model = load_segmentor(config, checkpoint)
    out = osp.join(tmp_path, 'fcn.onnx')
    export_onnx(model, SHAPE, out)
    images = bgr_images(1, seed=2)
    _, (onnx_seg, ) = run_onnx(out, images)
    _, (swapped, ) = run_onnx(out, images.flip(1))
    seg, _ = pytorch_reference(model, images)
    assert_close(onnx_seg, seg)
    assert np.abs(swapped - seg.numpy()).max() > 100 * MAX_ABS


def test_errors_name_the_problem(tmp_path):
    config, checkpoint = write_model(tmp_path, tiny_model('fcn', gscnn=False))
    with pytest.raises(FileNotFoundError, match='checkpoint file .* does not exist'):
        load_segmentor(config, osp.join(tmp_path, 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='config file .* does not exist'):
        load_segmentor(osp.join(tmp_path, 'missing.py'), checkpoint)
    # a checkpoint of another model (GSCNN keys) does not load silently
    other_config, other_checkpoint = write_model(tmp_path, tiny_model('fcn'), name='other')
    with pytest.raises(ValueError, match='does not fit the model'):
        load_segmentor(config, other_checkpoint)

    model = load_segmentor(config, checkpoint)
    out = osp.join(tmp_path, 'x.onnx')
    with pytest.raises(ValueError, match='opset 17 is too low'):
        export_onnx(model, SHAPE, out, opset=17)
    with pytest.raises(ValueError, match='two positive integers'):
        export_onnx(model, (0, 56), out)
    model.data_preprocessor.test_cfg = dict(size_divisor=32)
    with pytest.raises(ValueError, match='pads test images of 40x56 to 64x64'):
        export_onnx(model, SHAPE, out)
    assert not osp.exists(out)
