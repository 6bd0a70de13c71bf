"""Generate SyntheticStreet, a small street-like segmentation dataset.

    python tools/generate_synthetic_data.py [--out-dir data/synthetic]
        [--num-train 160] [--num-val 40] [--height 120] [--width 160] [--seed 0]

Writes the CamVid layout that ``SyntheticStreetDataset`` reads (``train/``,
``trainannot/``, ``val/``, ``valannot/``, ``meta.json``); the scenes and
their guarantees are described in :mod:`mmgscnn.datasets.synthetic_street_generator`.
Equal arguments give byte-identical files.
"""
import argparse
from typing import List, Optional

from mmgscnn.datasets.synthetic import CLASSES
from mmgscnn.datasets.synthetic_street_generator import generate


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Generate the SyntheticStreet dataset '
                                '(CamVid layout) used by the *_synthetic-96x128 configs')
    p.add_argument('--out-dir', default='data/synthetic', help='data root to write')
    p.add_argument('--num-train', type=int, default=160, help='training images')
    p.add_argument('--num-val', type=int, default=40, help='validation images')
    p.add_argument('--height', type=int, default=120, help='image height (px)')
    p.add_argument('--width', type=int, default=160, help='image width (px)')
    p.add_argument('--seed', type=int, default=0, help='random seed')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    a = parse_args(argv)
    meta = generate(a.out_dir, a.num_train, a.num_val, a.height, a.width, a.seed)
    print(f'wrote {a.num_train} train + {a.num_val} val images of {a.height}x{a.width} '
          f'(HxW), {len(CLASSES)} classes, to {a.out_dir}')
    return meta


if __name__ == '__main__':
    main()
