"""Pictures of a model's predictions on images, without labels or a dataset
(``tools/infer.py``).

Each IMAGES argument is an image file, a folder (its images, not recursive)
or a glob pattern. For every image, DIR/<name>.png shows, side by side: the
image | the predicted segmentation over it | the predicted boundary
probability (GSCNN models; models without a shape stream give the first two
panels only), drawn by :mod:`mmgscnn.visualization.prediction_pictures`.
Images that cannot be read are skipped, every other picture is written, and
the tool then lists the skipped files and exits with status 1. Batch norms
are folded into the convolutions first, and each folded conv -> ReLU runs as
one operator (:mod:`mmgscnn.deploy.fuse_bn`, :mod:`mmgscnn.deploy.fuse_conv_act`).
"""
import argparse

from mmgscnn.deploy.fuse_bn import fuse_bn
from mmgscnn.utils.config_errors import ConfigError
from mmgscnn.visualization.prediction_pictures import (PictureInputError, find_images,
                                                       load_model,
                                                       write_prediction_pictures)


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
                        help='draw no legend of class names and colours')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    skipped = []
    try:
        paths = sorted({p for spec in args.images for p in find_images(spec)})
        model = fuse_bn(load_model(args.config, args.checkpoint, args.device))
        written = write_prediction_pictures(model, paths, args.out_dir, args.opacity,
                                            args.boundary_cmap, not args.no_labels,
                                            skipped=skipped)
    except (PictureInputError, ConfigError) as err:
        raise SystemExit(f'infer.py: {err}') from None
    print(f'wrote {len(written)} picture(s) to {args.out_dir}')
    if skipped:
        raise SystemExit(f'infer.py: skipped {len(skipped)} of {len(paths)} image(s) that '
                         'cannot be read: ' + '; '.join(f'{p} ({why})' for p, why in skipped))
    return written
