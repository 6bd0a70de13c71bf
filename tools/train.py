"""Train a segmentor from a config, like mmseg's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]

The program is :mod:`mmgscnn.cli.train`.
"""
from mmgscnn.cli.train import main

if __name__ == '__main__':
    main()
