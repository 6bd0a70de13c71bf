"""ONNX export (mmgscnn.deploy, tools/export_onnx.py): onnxruntime against
the PyTorch model's own inference (data preprocessor, predict) on CPU."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmgscnn.deploy import compare_with_onnxruntime, export_onnx, load_segmentor
from helpers import TINY_CLASSES, tiny_model

ort = pytest.importorskip(
    'onnxruntime', reason='onnxruntime is not installed (pip install onnxruntime); '
    'the ONNX export tests run the exported files with it')
pytest.importorskip('onnxscript', reason='onnxscript is not installed (pip install '
                    'onnxscript); torch.onnx.export(dynamo=True) needs it')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHAPE = (40, 56)
MAX_ABS = 1e-4
MIN_AGREEMENT = 0.999


def write_model(tmp_path, model_cfg, name='model'):
    """Config file and checkpoint of a freshly initialised model. The BN
    running statistics get non-trivial values and the classifiers (initialised
    near zero) unit-scale weights, so outputs vary over the image and argmax
    ties are rare."""
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
    for name, p in model.named_parameters():
        if name.endswith(('conv_seg.weight', 'classifier.weight')):
            p.data.normal_(0, 1, generator=gen)
    config = osp.join(tmp_path, f'{name}.py')
    Config(dict(model=model_cfg, default_scope='mmseg',
                custom_imports=dict(imports=['mmgscnn'], allow_failed_imports=False))
           ).dump(config)
    checkpoint = osp.join(tmp_path, f'{name}.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': TINY_CLASSES}}}, checkpoint)
    return config, checkpoint


def bgr_images(n, shape=SHAPE, seed=0):
    """(n, 3, H, W) uint8 images with smooth regions and edges (BGR, as
    LoadImageFromFile gives them)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    imgs = []
    for _ in range(n):
        img = np.zeros((3, h, w), np.float32)
        for c in range(3):
            img[c] = 60 + 40 * c + 30 * np.sin(xx / rng.uniform(3, 9))
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        img[:, y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform(0, 255, (3, 1, 1))
        img += rng.normal(0, 6, img.shape)
        imgs.append(np.clip(img, 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(imgs))


def pytorch_reference(model, images):
    """Seg logits (N, K, H, W) and boundary probability (N, 1, H, W) or None,
    from mmseg's own path: data preprocessor, then predict."""
    with torch.no_grad():
        results = model.test_step(dict(inputs=list(images)))
    seg = torch.stack([r.seg_logits.data for r in results])
    boundary = (torch.stack([r.pred_boundary.data for r in results])
                if 'pred_boundary' in results[0] else None)
    return seg, boundary


def load_tool():
    """tools/export_onnx.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        'export_onnx_tool', osp.join(REPO, 'tools', 'export_onnx.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_onnx(path, images):
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session, session.run(None, {'image': images.float().numpy()})


def assert_close(onnx_seg, seg, onnx_boundary=None, boundary=None):
    assert onnx_seg.shape == tuple(seg.shape)
    assert np.abs(onnx_seg - seg.numpy()).max() <= MAX_ABS
    agreement = (onnx_seg.argmax(1) == seg.numpy().argmax(1)).mean()
    assert agreement >= MIN_AGREEMENT
    if boundary is not None:
        assert onnx_boundary.shape == tuple(boundary.shape)
        assert np.abs(onnx_boundary - boundary.numpy()).max() <= MAX_ABS


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


def test_cli_exports_gscnn_canny_pspnet_and_checks(tmp_path):
    """tools/export_onnx.py on a config file: a GSCNN PSPNet with the Canny
    image gradient and a half-resolution shape stream (area resizing)."""
    cfg = tiny_model('psp', shape_stream=dict(stride=2, image_gradient=dict(method='canny',
                                                                             sigma=1.0)))
    config, checkpoint = write_model(tmp_path, cfg)
    out = osp.join(tmp_path, 'psp.onnx')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'export_onnx.py'), config, checkpoint,
         '--shape', *map(str, SHAPE), '--out', out, '--check'],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'check passed' in proc.stdout

    model = load_segmentor(config, checkpoint)
    images = bgr_images(2, seed=3)
    _, (onnx_seg, onnx_boundary) = run_onnx(out, images)
    seg, boundary = pytorch_reference(model, images)
    assert_close(onnx_seg, seg, onnx_boundary, boundary)


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

    tool = load_tool()
    with pytest.raises(SystemExit, match='export_onnx.py: checkpoint file .* does not exist'):
        tool.main([config, osp.join(tmp_path, 'missing.pth'), '--shape', '40', '56',
                   '--out', out])
    with pytest.raises(SystemExit, match='export_onnx.py: opset 17 is too low'):
        tool.main([config, checkpoint, '--shape', '40', '56', '--out', out,
                   '--opset', '17'])
