"""Pictures of a model's predictions on images, without labels or a dataset.

    python tools/infer.py CONFIG CHECKPOINT IMAGES [IMAGES ...] --out-dir DIR [--device cpu]
                          [--opacity 0.5] [--boundary-cmap jet] [--no-labels]

Each IMAGES is an image file, a folder (its images, not recursive) or a glob
pattern (quote it: 'data/camvid/val/*.png'). For every image, DIR/<name>.png
shows, side by side: the image | the predicted segmentation over it | the
predicted boundary probability (GSCNN models; models without a shape stream
give the first two panels only). Every panel has the image's size.
"""
import argparse
import glob
import os
import os.path as osp
import sys

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw predictions (image | segmentation '
                                     '| boundary) of an mmseg/mmgscnn model')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('images', nargs='+', help='image files, folders or glob patterns')
    parser.add_argument('--out-dir', required=True, help='folder for the pictures')
    parser.add_argument('--device', default='cpu', help="torch device, e.g. 'cpu', 'cuda:0'")
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the segmentation over the image, in (0, 1]')
    parser.add_argument('--boundary-cmap', default=None,
                        help="OpenCV colour map for the boundary panel, e.g. 'jet' "
                        '(default: grey)')
    parser.add_argument('--no-labels', action='store_true',
                        help='do not write class names on the segmentation panel')
    return parser.parse_args(argv)


def find_images(spec: str) -> list:
    """Image paths named by a file, a folder or a glob pattern, sorted."""
    if osp.isfile(spec):
        return [spec]
    if osp.isdir(spec):
        paths = [osp.join(spec, n) for n in os.listdir(spec)]
    else:
        paths = glob.glob(spec, recursive=True)
    paths = sorted(p for p in paths
                   if osp.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        what = 'folder' if osp.isdir(spec) else 'file or pattern'
        raise SystemExit(f'no images found for {what} {spec!r} (extensions: '
                         f'{", ".join(IMAGE_EXTENSIONS)}); pass an image file, a folder '
                         "of images or a quoted glob such as 'val/*.png'")
    return paths


def dataset_meta_from_config(cfg) -> dict:
    """Classes and palette of the config's test (or val) dataset, if known."""
    from mmseg.registry import DATASETS
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = cfg.get(key, {}).get('dataset', {}) if cfg.get(key) else {}
        if not dataset or 'type' not in dataset:
            continue
        dataset_cls = DATASETS.get(dataset['type'])
        meta = dict(getattr(dataset_cls, 'METAINFO', {}) or {})
        meta.update(dataset.get('metainfo', {}) or {})
        if meta.get('classes') and meta.get('palette') \
                and len(meta['classes']) == len(meta['palette']):
            return dict(classes=meta['classes'], palette=meta['palette'])
    return {}


def load_model(config: str, checkpoint: str, device: str):
    """Build the model of ``config`` with the weights of ``checkpoint``.

    Classes and palette come from the checkpoint's ``meta.dataset_meta``
    (written by mmengine's Runner), else from the config's dataset, else
    mmseg's guess by the number of classes.
    """
    import mmgscnn  # noqa: F401  (registers the plug-in)
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'{what} file {path!r} does not exist')
    cfg = Config.fromfile(config)
    if 'test_pipeline' not in cfg:
        raise SystemExit(f'config {config!r} has no test_pipeline; inference needs it '
                         '(e.g. LoadImageFromFile, PackSegInputs)')
    model = init_model(cfg, None, device=device)
    try:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:
        raise SystemExit(f'checkpoint {checkpoint!r} does not fit the model of '
                         f'{config!r}; use the config it was trained with.\n{err}')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    dataset_meta = meta.get('dataset_meta') or dataset_meta_from_config(cfg)
    if dataset_meta:
        model.dataset_meta = dict(classes=dataset_meta['classes'],
                                  palette=dataset_meta['palette'])
    else:  # mmseg's fallback: a known dataset with as many classes
        from mmseg.utils import dataset_aliases, get_classes, get_palette
        num_classes = model.decode_head.num_classes
        name = next((n for n in dataset_aliases if len(get_classes(n)) == num_classes),
                    'cityscapes')
        print(f'note: no classes in the checkpoint or config; using {name}\'s names',
              file=sys.stderr)
        model.dataset_meta = dict(classes=get_classes(name), palette=get_palette(name))
    return model


def draw(model, visualizer, path: str, with_labels: bool):
    """(H, 3W or 2W, 3) RGB picture of one image and whether it has a boundary panel."""
    import mmcv
    import numpy as np
    from mmseg.apis import inference_model

    result = inference_model(model, path)
    image = mmcv.imread(path, channel_order='rgb')
    visualizer.add_datasample(osp.basename(path), image, result, draw_gt=False,
                              draw_pred=True, show=False, with_labels=with_labels)
    drawn = visualizer.get_image()
    return np.concatenate([image, drawn], axis=1), 'pred_boundary' in result


def main(argv=None):
    args = parse_args(argv)
    if not 0 < args.opacity <= 1:
        raise SystemExit(f'--opacity must be in (0, 1], got {args.opacity}')
    paths = sorted({p for spec in args.images for p in find_images(spec)})
    model = load_model(args.config, args.checkpoint, args.device)

    import mmcv
    from mmgscnn.visualization import SegBoundaryVisualizer
    visualizer = SegBoundaryVisualizer(name='infer', alpha=args.opacity,
                                       boundary_cmap=args.boundary_cmap)
    # Set after construction: SegLocalVisualizer.__init__ swaps classes and palette.
    visualizer.dataset_meta = dict(classes=list(model.dataset_meta['classes']),
                                   palette=list(model.dataset_meta['palette']))
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for path in paths:
        picture, has_boundary = draw(model, visualizer, path, not args.no_labels)
        out = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '.png')
        if out in written:
            print(f'note: {path} has the name of an earlier image; {out} is overwritten',
                  file=sys.stderr)
        mmcv.imwrite(mmcv.rgb2bgr(picture), out)
        written.append(out)
        if not has_boundary and len(written) == 1:
            print('note: the model predicts no boundary map (no shape stream); the '
                  'pictures show image | segmentation only', file=sys.stderr)
    print(f'wrote {len(written)} picture(s) to {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
