"""Check every image and label of a config's datasets before training.

    python tools/check_data.py CONFIG [--splits train val test] [--workers 8]
                               [--num-classes K] [--cfg-options k=v ...]

Prints one line per bad file (unreadable, truncated or empty; image without
label; label RGB or 16-bit; label size differs from the image; label values
outside 0..num_classes-1 other than ignore_index) and a summary; exits 1 when
any file is bad, 0 on clean data. The program is :mod:`mmgscnn.cli.check_data`.
"""
from mmgscnn.cli.check_data import main

if __name__ == '__main__':
    main()
