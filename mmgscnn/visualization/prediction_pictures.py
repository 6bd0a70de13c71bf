"""Pictures of a model's predictions on image files, without labels or a
dataset: image | prediction | boundary map (see ``SegBoundaryVisualizer``)."""
import glob
import os
import os.path as osp
import sys
from typing import Iterable, List, Optional

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


class PictureInputError(ValueError):
    """An image, config, checkpoint or option that prediction pictures cannot use."""


def find_images(spec: str) -> List[str]:
    """Image paths named by a file, a folder (not recursive) or a glob pattern, sorted."""
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
        raise PictureInputError(
            f'no images found for {what} {spec!r} (extensions: '
            f'{", ".join(IMAGE_EXTENSIONS)}); pass an image file, a folder of images or a '
            "quoted glob such as 'val/*.png'")
    return paths


def dataset_meta_from_config(cfg) -> dict:
    """Classes and palette of the config's test (else val, else train) dataset, if known."""
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


def load_model(config: str, checkpoint: str, device: str = 'cpu'):
    """Build the model of ``config`` with the weights of ``checkpoint``.

    Classes and palette (``model.dataset_meta``) come from the checkpoint's
    ``meta.dataset_meta`` (written by mmengine's Runner), else from the
    config's dataset, else mmseg's names of a dataset with as many classes.
    """
    import mmgscnn  # noqa: F401  (registers the plug-in)
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise PictureInputError(f'{what} file {path!r} does not exist')
    cfg = Config.fromfile(config)
    if 'test_pipeline' not in cfg:
        raise PictureInputError(f'config {config!r} has no test_pipeline; inference needs '
                                'it (e.g. LoadImageFromFile, PackSegInputs)')
    model = init_model(cfg, None, device=device)
    try:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:
        raise PictureInputError(f'checkpoint {checkpoint!r} does not fit the model of '
                                f'{config!r}; use the config it was trained with.\n{err}')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    dataset_meta = meta.get('dataset_meta') or dataset_meta_from_config(cfg)
    if dataset_meta:
        model.dataset_meta = dict(classes=dataset_meta['classes'],
                                  palette=dataset_meta['palette'])
    else:
        from mmseg.utils import dataset_aliases, get_classes, get_palette
        num_classes = model.decode_head.num_classes
        name = next((n for n in dataset_aliases if len(get_classes(n)) == num_classes),
                    'cityscapes')
        print(f"note: no classes in the checkpoint or config; using {name}'s names",
              file=sys.stderr)
        model.dataset_meta = dict(classes=get_classes(name), palette=get_palette(name))
    return model


def _read_rgb(path: str) -> tuple:
    """(H, W, 3) RGB image, None) or (None, why it cannot be read)."""
    import mmcv
    if osp.getsize(path) == 0:
        return None, 'empty file (0 bytes)'
    try:
        image = mmcv.imread(path)
    except Exception as err:  # cv2/PIL decoding errors have no common type
        return None, f'cannot be read ({type(err).__name__}: {str(err).strip().splitlines()[-1]})'
    if image is None:
        return None, 'cannot be decoded (truncated or not an image)'
    return mmcv.bgr2rgb(image), None


def write_prediction_pictures(model, images: Iterable[str], out_dir: str,
                              opacity: float = 0.5, boundary_cmap: Optional[str] = None,
                              with_legend: bool = True,
                              skipped: Optional[list] = None) -> List[str]:
    """Predict every image and write ``out_dir/<name>.png``: image | prediction
    over it | boundary probability (models without a shape stream: the first
    two), upscaled, with a class legend and a colour bar. An image that cannot
    be read (empty, truncated, not an image) is skipped with a note on stderr
    and appended to ``skipped`` as (path, reason); the others are written.

    Args:
        model: a segmentor with ``dataset_meta`` (see :func:`load_model`).
        images: image files.
        opacity: of the class colours over the image, in (0, 1].
        boundary_cmap: None for grey or an OpenCV colour map name.
        with_legend: list the colours of the predicted classes below.

    Returns:
        The written paths, in the order of ``images``.
    """
    import mmcv
    from mmseg.apis import inference_model

    from .colour_keys import colormap_code
    from .seg_boundary_visualizer import SegBoundaryVisualizer

    if not 0 < opacity <= 1:
        raise PictureInputError(f'opacity must be in (0, 1], got {opacity}')
    if boundary_cmap is not None:
        try:
            colormap_code(boundary_cmap)
        except ValueError as err:
            raise PictureInputError(str(err)) from None
    visualizer = SegBoundaryVisualizer(name='prediction_pictures', alpha=opacity,
                                       boundary_cmap=boundary_cmap)
    # Set after construction: SegLocalVisualizer.__init__ swaps classes and palette.
    visualizer.dataset_meta = dict(classes=list(model.dataset_meta['classes']),
                                   palette=list(model.dataset_meta['palette']))
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in images:
        image, reason = _read_rgb(path)
        if image is None:
            print(f'skipped {path}: {reason}', file=sys.stderr)
            if skipped is not None:
                skipped.append((path, reason))
            continue
        result = inference_model(model, path)
        picture = visualizer.draw_picture(image, result, draw_gt=False,
                                          with_legend=with_legend).image
        out = osp.join(out_dir, osp.splitext(osp.basename(path))[0] + '.png')
        if out in written:
            print(f'note: {path} has the name of an earlier image; {out} is overwritten',
                  file=sys.stderr)
        mmcv.imwrite(mmcv.rgb2bgr(picture), out)
        written.append(out)
        if 'pred_boundary' not in result and len(written) == 1:
            print('note: the model predicts no boundary map (no shape stream); the '
                  'pictures show image | prediction only', file=sys.stderr)
    return written
