"""mmgscnn.datasets.label_check: what is wrong with one image/label pair,
on hand-made files (PNG header, modes, sizes, values after mmseg's
reduce_zero_label and label_map)."""
import cv2
import numpy as np
import pytest
from PIL import Image

from mmgscnn.datasets.label_check import (SegInputError, check_loaded_label, map_labels,
                                          out_of_range, pair_problems, png_header)


def write(path, array):
    cv2.imwrite(str(path), array)
    return str(path)


@pytest.fixture
def pair(tmp_path):
    img = write(tmp_path / 'img.png', np.full((6, 8, 3), 90, np.uint8))
    label = np.zeros((6, 8), np.uint8)
    label[:, 4:] = 2
    label[0, 0] = 255
    return img, write(tmp_path / 'label.png', label)


def test_png_header_reads_size_depth_and_colour_type(tmp_path):
    assert png_header(write(tmp_path / 'g.png', np.zeros((6, 8), np.uint8))) == (6, 8, 8, 0)
    assert png_header(write(tmp_path / 'w.png', np.zeros((5, 7), np.uint16))) == (5, 7, 16, 0)
    assert png_header(write(tmp_path / 'c.png', np.zeros((2, 3, 3), np.uint8)))[3] == 2
    assert png_header(write(tmp_path / 'a.png', np.zeros((2, 3, 4), np.uint8)))[3] == 6
    (tmp_path / 'x.png').write_bytes(b'not a png at all, but long enough.....')
    assert png_header(str(tmp_path / 'x.png')) is None


def test_map_labels_follows_mmseg_reduce_zero_label_then_label_map():
    raw = np.array([[0, 1, 2, 255, 11]], np.uint8)
    # reduce_zero_label: 0 -> 255, v -> v - 1, 255 stays 255
    assert map_labels(raw, reduce_zero_label=True).tolist() == [[255, 0, 1, 255, 10]]
    assert map_labels(raw, label_map={11: 255, 2: 0}).tolist() == [[0, 1, 0, 255, 255]]


def test_out_of_range_counts_values_that_are_neither_class_nor_ignore():
    label = np.array([[0, 3, 4, 4, 255, 37, 254]], np.uint8)
    assert out_of_range(label, 4, 255) == {4: 2, 37: 1, 254: 1}
    assert out_of_range(label, 4, 254) == {4: 2, 37: 1, 255: 1}
    assert out_of_range(np.array([[0, 1, 255]], np.uint8), 2, 255) == {}


def test_clean_pair_has_no_problem(pair):
    assert pair_problems(*pair, num_classes=3) == []


def test_each_bad_file_is_named_with_its_problem(pair, tmp_path):
    img, label = pair
    # values: 2 is outside 2 classes; 255 is ignore_index
    assert pair_problems(img, label, num_classes=2) == [
        (label, 'values', 'has values 2 (24 px) outside the 2 classes (0..1) that are '
                          'not ignore_index 255')]
    # reduce_zero_label: raw 0 becomes ignored, raw 2 becomes 1: fine for 2 classes
    assert pair_problems(img, label, 2, reduce_zero_label=True) == []
    # a label map sending 2 to 1 also makes it fine
    assert pair_problems(img, label, 2, label_map={2: 1}) == []

    rgb = write(tmp_path / 'rgb.png', np.zeros((6, 8, 3), np.uint8))
    deep = write(tmp_path / 'deep.png', np.full((6, 8), 300, np.uint16))
    small = write(tmp_path / 'small.png', np.zeros((5, 8), np.uint8))
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    data = open(label, 'rb').read()
    cut = tmp_path / 'cut.png'
    cut.write_bytes(data[:len(data) // 2])
    kinds = {name: [(p, k) for p, k, _ in pair_problems(img, path, 3)]
             for name, path in (('rgb', rgb), ('deep', deep), ('small', small),
                                ('empty', str(empty)), ('cut', str(cut)),
                                ('missing', str(tmp_path / 'nope.png')))}
    assert kinds == {'rgb': [(rgb, 'mode')], 'deep': [(deep, 'mode')],
                     'small': [(small, 'size')], 'empty': [(str(empty), 'unreadable')],
                     'cut': [(str(cut), 'unreadable')], 'missing': [(img, 'missing')]}
    assert 'truncated' in pair_problems(img, str(cut), 3)[0][2]
    assert 'empty (0 bytes)' in pair_problems(img, str(empty), 3)[0][2]
    assert '16' in pair_problems(img, deep, 3)[0][2]
    # an image without a label in the split: the image is named
    assert pair_problems(str(empty), None, 3)[0][:2] == (str(empty), 'unreadable')


def test_palette_label_is_a_valid_label_map(tmp_path):
    img = write(tmp_path / 'img.png', np.zeros((4, 4, 3), np.uint8))
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8).repeat(2, 0).repeat(2, 1),
                          mode='P')
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / 'pal.png')
    assert pair_problems(img, str(tmp_path / 'pal.png'), 2) == []


def results_for(path, label, shape=None):
    return dict(seg_map_path=str(path), gt_seg_map=label, img_path='img.png',
                ori_shape=shape or label.shape[:2], reduce_zero_label=False)


def test_check_loaded_label_raises_one_line_naming_the_file(tmp_path):
    good = np.array([[0, 1], [255, 2]], np.uint8)
    path = write(tmp_path / 'l.png', good)
    check_loaded_label(results_for(path, good), 3)          # no error
    check_loaded_label(results_for(path, good + 50), None)  # values not checked
    cases = [
        (results_for(path, good), 2, r'l\.png has values 2 \(1 px\) outside the 2 classes'),
        (results_for(path, good, (3, 2)), 3, r'l\.png is 2x2 \(HxW\), its image img\.png '
                                             r'is 3x2'),
        (results_for(path, np.zeros((2, 2, 4), np.uint8)), 3, 'has 4 channels'),
        (results_for(write(tmp_path / 'w.png', good.astype(np.uint16)), good), 3,
         r'w\.png is 16-bit'),
    ]
    for results, k, message in cases:
        with pytest.raises(SegInputError, match=message) as err:
            check_loaded_label(results, k)
        assert '\n' not in str(err.value) and 'tools/check_data.py' in str(err.value)
