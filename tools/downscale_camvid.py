"""Write a downscaled copy of CamVid (for short studies and small transfers).

    python tools/downscale_camvid.py [--src data/camvid] [--out-dir data/camvid-180x240]
        [--size 180 240] [--splits train val] [--jpeg-quality 92]

Images: cv2.INTER_AREA, JPEG; labels: cv2.INTER_NEAREST, PNG (same file
stems, CamVid's layout); ``downscale.json`` records how. The configs
``*_camvid-180x240.py`` read the default output folder.
"""
import argparse
import os
import os.path as osp

from mmgscnn.datasets.camvid_downscale import downscale_camvid


def folder_size(root):
    """Bytes of all files under ``root``."""
    return sum(osp.getsize(osp.join(d, f)) for d, _, files in os.walk(root) for f in files)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--src', default='data/camvid',
                   help='CamVid folder (train/, trainannot/, val/, valannot/)')
    p.add_argument('--out-dir', default='data/camvid-180x240', help='folder of the copy')
    p.add_argument('--size', type=int, nargs=2, default=(180, 240), metavar=('H', 'W'),
                   help='height and width of the copy (px)')
    p.add_argument('--splits', nargs='+', default=['train', 'val'], help='splits to copy')
    p.add_argument('--jpeg-quality', type=int, default=92, help='JPEG quality (1-100)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        counts = downscale_camvid(a.src, a.out_dir, tuple(a.size), a.splits, a.jpeg_quality)
    except (OSError, ValueError) as err:
        raise SystemExit(f'downscale_camvid: {err}')
    print(f'wrote {", ".join(f"{n} {s}" for s, n in counts.items())} images of '
          f'{a.size[0]}x{a.size[1]} (HxW) to {a.out_dir} '
          f'({folder_size(a.out_dir) / 2**20:.1f} MiB)')
    return counts


if __name__ == '__main__':
    main()
