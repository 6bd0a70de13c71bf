"""mmgscnn.cli.export_onnx (tools/export_onnx.py): the program on a config
file with --check, and its errors."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmgscnn.cli import export_onnx
from mmgscnn.deploy import load_segmentor
from onnx_helpers import SHAPE, assert_close, bgr_images, pytorch_reference, run_onnx, write_model
from helpers import tiny_model

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


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


def test_cli_errors_name_the_problem(tmp_path):
    config, checkpoint = write_model(tmp_path, tiny_model('fcn', gscnn=False))
    out = osp.join(tmp_path, 'x.onnx')
    with pytest.raises(SystemExit, match='export_onnx.py: checkpoint file .* does not exist'):
        export_onnx.main([config, osp.join(tmp_path, 'missing.pth'), '--shape', '40', '56',
                          '--out', out])
    with pytest.raises(SystemExit, match='export_onnx.py: opset 17 is too low'):
        export_onnx.main([config, checkpoint, '--shape', '40', '56', '--out', out,
                          '--opset', '17'])
    assert not osp.exists(out)
