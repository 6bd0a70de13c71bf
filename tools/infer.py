"""Pictures of a model's predictions on images, without labels or a dataset.

    python tools/infer.py CONFIG CHECKPOINT IMAGES [IMAGES ...] --out-dir DIR [--device cpu]
                          [--opacity 0.5] [--boundary-cmap jet] [--no-labels]

IMAGES: image files, folders or glob patterns (quote them:
'data/camvid/val/*.png'); DIR/<name>.png shows image | segmentation |
boundary probability.

The program is :mod:`mmgscnn.cli.infer`.
"""
from mmgscnn.cli.infer import main

if __name__ == '__main__':
    main()
