"""Evaluate a checkpoint, like mmseg's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
                         [--out DIR] [--tta] [--metrics-out FILE.json]
                         [--cfg-options k=v ...]

The program is :mod:`mmgscnn.cli.test`.
"""
from mmgscnn.cli.test import main

if __name__ == '__main__':
    main()
