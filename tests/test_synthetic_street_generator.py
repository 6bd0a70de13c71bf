"""mmgscnn.datasets.synthetic_street_generator (and
tools/generate_synthetic_data.py): the layout and bytes it writes, its
drawing primitives, and scenes whose labels, colours and edges agree."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from helpers import read_pair
from mmgscnn.datasets import synthetic_street_generator as gen
from mmgscnn.datasets.synthetic import CLASSES, PALETTE

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
H, W = 120, 160  # the generator's default size
CID = {c: i for i, c in enumerate(CLASSES)}


def all_pairs(root):
    for split in ('train', 'val'):
        for name in sorted(os.listdir(osp.join(root, split))):
            yield (name, *read_pair(root, split, name))


def files(root):
    """{relative path: bytes} of everything the generator wrote."""
    out = {}
    for path in sorted(glob.glob(osp.join(root, '**', '*'), recursive=True)):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def runs(mask_1d):
    """Lengths of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[0], mask_1d.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


def test_layout_sizes_counts_and_pairs(synthetic_data):
    root, meta = synthetic_data
    assert sorted(os.listdir(root)) == ['meta.json', 'train', 'trainannot', 'val', 'valannot']
    for split, n in (('train', 10), ('val', 4)):
        names = sorted(os.listdir(osp.join(root, split)))
        assert names == [f'{split}_{i:04d}.png' for i in range(n)]
        assert sorted(os.listdir(osp.join(root, split + 'annot'))) == names
        for name in names:
            img, label = read_pair(root, split, name)
            assert img.shape == (H, W, 3) and img.dtype == np.uint8
            assert label.shape == (H, W) and label.dtype == np.uint8  # one channel
    with open(osp.join(root, 'meta.json')) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(meta))
    assert on_disk['classes'] == list(CLASSES) and on_disk['palette'] == PALETTE
    assert (on_disk['num_train'], on_disk['num_val'], on_disk['height'],
            on_disk['width'], on_disk['seed']) == (10, 4, H, W, 3)
    for split in ('train', 'val'):
        shares = on_disk['class_pixel_share'][split]
        assert sorted(shares) == sorted(CLASSES)
        assert abs(sum(shares.values()) - 1) < 1e-3


def test_same_seed_same_bytes_other_seed_differs(synthetic_data, tmp_path):
    a = gen.generate(str(tmp_path / 'a'), num_train=3, num_val=2, height=64, width=96, seed=7)
    gen.generate(str(tmp_path / 'b'), num_train=3, num_val=2, height=64, width=96, seed=7)
    gen.generate(str(tmp_path / 'c'), num_train=3, num_val=2, height=64, width=96, seed=8)
    fa, fb, fc = (files(str(tmp_path / k)) for k in 'abc')
    assert len(fa) == 11 and fa == fb  # 10 PNGs and meta.json, byte for byte
    for path in fa:
        if path.startswith(('train/', 'val/')):
            assert fa[path] != fc[path], path
    assert a['height'] == 64 and read_pair(str(tmp_path / 'a'), 'val', 'val_0001.png')[0].shape \
        == (64, 96, 3)
    # Image i depends on (seed, split, i) only: the first images of a larger run are equal.
    root, _ = synthetic_data
    gen.generate(str(tmp_path / 'd'), num_train=2, num_val=1, seed=3)
    fd, fdata = files(str(tmp_path / 'd')), files(root)
    for path in ('train/train_0000.png', 'trainannot/train_0001.png', 'val/val_0000.png'):
        assert fd[path] == fdata[path], path


def test_rewrite_clears_old_files_and_refuses_foreign_folders(tmp_path):
    root = str(tmp_path / 'out')
    gen.generate(root, num_train=4, num_val=2, height=48, width=64)
    # the command line, as a user calls it
    tool = osp.join(REPO, 'tools', 'generate_synthetic_data.py')
    done = subprocess.run([sys.executable, tool, '--out-dir', root, '--num-train', '2',
                           '--num-val', '1', '--height', '48', '--width', '64'],
                          check=True, capture_output=True, text=True)
    assert 'wrote 2 train + 1 val images of 48x64' in done.stdout
    assert sorted(os.listdir(osp.join(root, 'train'))) == ['train_0000.png', 'train_0001.png']
    assert sorted(os.listdir(osp.join(root, 'valannot'))) == ['val_0000.png']
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='meta.json'):
        gen.generate(str(foreign), num_train=1, num_val=1)
    assert os.listdir(foreign) == ['notes.txt']
    with pytest.raises(ValueError, match='48 x 64'):
        gen.generate(str(tmp_path / 'small'), height=32, width=64)


def test_label_ids_valid_and_every_class_drawn(synthetic_data):
    root, _ = synthetic_data
    per_image = [set(np.unique(label).tolist()) for _, _, label in all_pairs(root)]
    assert all(ids <= set(range(len(CLASSES))) for ids in per_image)
    assert set.union(*per_image) == set(range(len(CLASSES)))
    # Thin classes are in most scenes, not only in a few.
    for cls in ('pole', 'wire'):
        assert sum(CID[cls] in ids for ids in per_image) >= 0.8 * len(per_image), cls


def test_drawing_primitives_give_the_promised_widths():
    """Curves (wires, rails, lamp arms) are >= 2 px high in every column they
    cross; poles are 2-4 px wide at every depth."""
    rng = np.random.default_rng(0)
    sc = gen.Scene(rng, H, W)
    for x0, x1, fn in ((3.2, 150.7, lambda x: 20 + 0.3 * x),      # gentle slope
                       (10, 40, lambda x: 5 + 2.5 * (x - 10)),      # steep
                       (0, W - 1, lambda x: 50 + 8 * np.sin(x / 9))):
        m = sc.curve(x0, x1, fn, thickness=2)
        cols = np.flatnonzero(m.any(0))
        assert cols[0] == int(np.ceil(x0)) and cols[-1] == int(np.floor(x1))
        assert len(cols) == cols[-1] - cols[0] + 1  # no gap
        for c in cols:
            r = runs(m[:, c])
            assert len(r) == 1 and r[0] >= 2, (c, r)
        # 4-connected: consecutive columns share a row
        rows = [set(np.flatnonzero(m[:, c])) for c in cols]
        assert all(a & b for a, b in zip(rows, rows[1:]))
    for z in (1.0, 2.0, 5.0, 12.0):
        sc = gen.Scene(np.random.default_rng(int(z)), H, W)
        sc.label[:] = gen.SKY
        gen.draw_pole(sc, -3.0, z, 1.0)
        body = sc.label == gen.POLE
        # rows the pole's own sign (drawn over it) does not cross
        rows = np.flatnonzero(body.any(1) & ~(sc.label == gen.SIGN).any(1))
        widths = [r for y in rows for r in runs(body[y])]
        # the body is 2-4 px wide in every row; lamp-arm rows are wider
        assert np.median(widths) in (2, 3, 4) and min(widths) >= 2, (z, widths)
        assert np.mean([2 <= w <= 4 for w in widths]) > 0.8, (z, widths)


def test_thin_structures_keep_their_width_in_the_scenes(synthetic_data):
    root, _ = synthetic_data
    wire_runs, pole_runs = [], []
    for _, _, label in all_pairs(root):
        wire, pole = label == CID['wire'], label == CID['pole']
        wire_runs += [r for c in range(W) for r in runs(wire[:, c])]
        pole_runs += [r for y in range(H) for r in runs(pole[y])]
    wire_runs, pole_runs = np.array(wire_runs), np.array(pole_runs)
    # Occluders (poles, signs, trees) may clip a run; nothing else makes it thinner.
    assert len(wire_runs) > 500 and np.mean(wire_runs >= 2) > 0.95
    assert len(pole_runs) > 500 and np.mean((pole_runs >= 2) & (pole_runs <= 4)) > 0.85
    assert np.median(pole_runs) in (2, 3, 4)


def test_region_colours_match_the_class_appearance(synthetic_data):
    """The median colour of each class region (its interior, or all of it for
    thin classes) lies in the class's APPEARANCE box in every image; a label
    map paired with the wrong image fails."""
    root, _ = synthetic_data
    kernel = np.ones((5, 5), np.uint8)

    def outside_box(img, label):
        bad, checked = [], 0
        for cls, (lo, hi) in gen.APPEARANCE.items():
            m = label == CID[cls]
            if cls not in gen.NO_INTERIOR:
                m = cv2.erode(m.astype(np.uint8), kernel).astype(bool)
            if m.sum() < 20:
                continue
            checked += 1
            med = np.median(img[m], axis=0)
            if not (np.all(med >= lo) and np.all(med <= hi)):
                bad.append((cls, med.tolist()))
        return bad, checked

    pairs = list(all_pairs(root))
    total = 0
    for name, img, label in pairs:
        bad, checked = outside_box(img, label)
        assert not bad, (name, bad)
        total += checked
    assert total >= 5 * len(pairs)
    # control: labels flipped left-right, or of another image, do not fit
    flipped = [bool(outside_box(img, label[:, ::-1])[0]) for _, img, label in pairs]
    swapped = [bool(outside_box(img, other)[0])
               for (_, img, _), (_, _, other) in zip(pairs, pairs[1:] + pairs[:1])]
    assert np.mean(flipped) >= 0.75 and np.mean(swapped) >= 0.75, (flipped, swapped)


def test_image_edges_lie_on_label_boundaries(synthetic_data):
    """Image gradients are strongest on the label boundaries, and no shift of
    the labels by up to 2 px fits the image edges better than none."""
    root, _ = synthetic_data

    def ratio(grad, label):
        b = np.zeros_like(label, bool)
        b[:, 1:] |= label[:, 1:] != label[:, :-1]
        b[1:] |= label[1:] != label[:-1]
        far = cv2.dilate(b.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
        return grad[b].mean() / grad[far].mean()

    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    ratios = {s: [] for s in shifts}
    for _, img, label in all_pairs(root):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grad = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        for s in shifts:
            ratios[s].append(ratio(grad, np.roll(label, s, axis=(0, 1))))
    assert min(ratios[0, 0]) > 2.0, ratios[0, 0]
    median = {s: np.median(r) for s, r in ratios.items()}
    assert max(median, key=median.get) == (0, 0), median
    assert median[0, 0] > 1.5 * median[2, 2], median


def test_wires_are_darker_than_what_lies_above_and_below(synthetic_data):
    root, _ = synthetic_data
    darker = []
    for _, img, label in all_pairs(root):
        grey = img.astype(np.float32).mean(2)
        wire = label == CID['wire']
        for c in range(W):
            for_col = np.flatnonzero(wire[:, c])
            if len(for_col) == 0 or len(runs(wire[:, c])) != 1:
                continue
            top, bottom = for_col[0] - 3, for_col[-1] + 3
            if top < 0 or bottom >= H or wire[top, c] or wire[bottom, c]:
                continue
            darker.append(grey[for_col, c].mean() < min(grey[top, c], grey[bottom, c]))
    assert len(darker) > 300 and np.mean(darker) > 0.9
