"""Export of a trained model to ONNX (``tools/export_onnx.py``): whole-image
inference at one image size.

Graph input ``image``: float32 (N, 3, H, W), pixel values 0..255, channels in
the order the config's pipeline loads them (BGR for LoadImageFromFile); the
batch size N is free, H and W are the ``--shape``. Outputs: ``seg_logits``
(N, K, H, W) and, for GSCNN models, ``boundary`` (N, 1, H, W) probabilities.
Normalisation happens inside the graph; resizing the image to the size the
model expects (the pipeline's Resize), slide inference and test-time
augmentation do not. ``--check`` runs the file with onnxruntime on two random
images and compares it with PyTorch. The export is :mod:`mmgscnn.deploy`,
batch norms folded into the convolutions (:mod:`mmgscnn.deploy.fuse_bn`).
"""
import argparse

# --check fails above these (the test suite holds exports to the same)
MAX_ABS = 1e-4
MIN_ARGMAX_AGREEMENT = 0.999


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Export an mmseg/mmgscnn model to ONNX')
    p.add_argument('config', help='model config file')
    p.add_argument('checkpoint', help='checkpoint file (.pth) or URL')
    p.add_argument('--shape', type=int, nargs=2, required=True, metavar=('H', 'W'),
                   help='image height and width the graph takes (after the '
                   "pipeline's Resize)")
    p.add_argument('--out', required=True, help='ONNX file to write')
    p.add_argument('--opset', type=int, default=18, help='ONNX opset (>= 18, default 18)')
    p.add_argument('--check', action='store_true',
                   help='compare the file with PyTorch on random images (onnxruntime)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.test_cfg.with_boundary=False')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmgscnn.deploy import compare_with_onnxruntime, export_onnx, load_segmentor
    from mmgscnn.deploy.fuse_bn import fuse_bn
    try:
        # plain aten ops only: the fused conv+ReLU operators have no ONNX form
        model = fuse_bn(load_segmentor(args.config, args.checkpoint, args.cfg_options),
                        conv_act=False)
        module = export_onnx(model, args.shape, args.out, opset=args.opset)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'export_onnx.py: {err}')
    print(f'wrote {args.out}: input image (N, 3, {args.shape[0]}, {args.shape[1]}), '
          f'outputs {", ".join(module.output_names)}')
    if not args.check:
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise SystemExit('export_onnx.py: --check needs onnxruntime '
                         '(pip install onnxruntime)')
    import torch
    images = torch.rand(2, 3, *args.shape, generator=torch.Generator().manual_seed(0)) * 255
    stats = compare_with_onnxruntime(module, args.out, images)
    ok = True
    for name, s in stats.items():
        print(f'{name}: max abs difference {s["max_abs"]:.3g}'
              + (f', same argmax on {100 * s["argmax_agreement"]:.3f} % of pixels'
                 if 'argmax_agreement' in s else ''))
        ok &= s['max_abs'] <= MAX_ABS and s.get('argmax_agreement', 1) >= MIN_ARGMAX_AGREEMENT
    if not ok:
        raise SystemExit(f'export_onnx.py: onnxruntime and PyTorch differ by more than '
                         f'{MAX_ABS} (or argmax agreement < {100 * MIN_ARGMAX_AGREEMENT} %)')
    print('check passed')
