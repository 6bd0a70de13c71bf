"""Models, images and comparisons for the ONNX export tests
(mmgscnn.deploy, tools/export_onnx.py); skips the importing test module when
onnxruntime or onnxscript is missing."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import TINY_CLASSES
from mmgscnn.cli.export_onnx import MAX_ABS, MIN_ARGMAX_AGREEMENT as MIN_AGREEMENT

ort = pytest.importorskip(
    'onnxruntime', reason='onnxruntime is not installed (pip install onnxruntime); '
    'the ONNX export tests run the exported files with it')
pytest.importorskip('onnxscript', reason='onnxscript is not installed (pip install '
                    'onnxscript); torch.onnx.export(dynamo=True) needs it')

SHAPE = (40, 56)


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
