"""Score a folder of predicted PNG label maps (any model's) against ground truth.

    python tools/eval_boundary.py --pred DIR --gt DIR --num-classes N [--ignore-index 255]
        [--tolerances 3 5 9 12] [--dilation-ratio 0.02] [--classes NAME ...]
        [--reduce-zero-label] [--crop-factors ...] [--out F.json] [--markdown F.md]
        [--workers K]

Prints and writes mIoU, mBF@<t>px, mBIoU (and mIoU@crop<c>) with per-class
tables; files are matched by their path relative to --pred / --gt (*.png).
A ground-truth file without prediction or with another size is named and
the exit status is 1. The program is :mod:`mmgscnn.cli.eval_boundary`.
"""
from mmgscnn.cli.eval_boundary import main

if __name__ == '__main__':
    main()
