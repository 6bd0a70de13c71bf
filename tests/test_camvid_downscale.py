"""mmgscnn.datasets.camvid_downscale: the downscaled copy of CamVid
(tools/downscale_camvid.py) on hand-made blocks, rewrites and errors."""
import json
import os

import cv2
import numpy as np
import pytest

from mmgscnn.datasets.camvid_downscale import downscale_camvid


def test_downscale_values_on_blocks(tmp_path):
    """Each 2x2 block of the source becomes one pixel: the block's mean colour
    (INTER_AREA; JPEG quality 92 moves it by a level or two) and its label
    (INTER_NEAREST), under the same stem."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:12, 0:16]
    colours = np.stack([40 + 8 * x, 60 + 6 * y, np.full_like(x, 128)], -1)  # smooth ramps
    # +-40 in a checkerboard inside every block: its mean is the ramp's colour
    checker = np.where((np.indices((24, 32)).sum(0) % 2)[..., None] == 1, 40, -40)
    image = (np.kron(colours, np.ones((2, 2, 1), int)) + checker).astype(np.uint8)
    ids = rng.integers(0, 12, (12, 16)).astype(np.uint8)
    for folder, arr in (('val', image), ('valannot', np.kron(ids, np.ones((2, 2), np.uint8)))):
        os.makedirs(tmp_path / 'src' / folder)
        cv2.imwrite(str(tmp_path / 'src' / folder / 'a.png'), arr)
    dst = tmp_path / 'dst'
    assert downscale_camvid(str(tmp_path / 'src'), str(dst), (12, 16), ['val']) == {'val': 1}
    assert sorted(os.listdir(dst)) == ['downscale.json', 'val', 'valannot']
    img = cv2.imread(str(dst / 'val' / 'a.jpg'))
    label = cv2.imread(str(dst / 'valannot' / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert img.shape == (12, 16, 3) and label.shape == (12, 16)
    np.testing.assert_array_equal(label, ids)
    assert np.abs(img.astype(int) - colours).mean() < 3  # a corner pixel would be 40 off
    record = json.loads((dst / 'downscale.json').read_text())
    assert record['size'] == [12, 16] and record['image']['jpeg_quality'] == 92
    # a second run empties the split folders; a foreign folder is refused
    (dst / 'val' / 'stale.jpg').write_bytes(b'x')
    downscale_camvid(str(tmp_path / 'src'), str(dst), (6, 8), ['val'])
    assert os.listdir(dst / 'val') == ['a.jpg']
    assert cv2.imread(str(dst / 'val' / 'a.jpg')).shape == (6, 8, 3)
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('x')
    with pytest.raises(FileExistsError, match='downscale.json'):
        downscale_camvid(str(tmp_path / 'src'), str(tmp_path / 'mine'), (6, 8), ['val'])
    os.remove(tmp_path / 'src' / 'valannot' / 'a.png')
    with pytest.raises(FileNotFoundError, match='label .*a.png'):
        downscale_camvid(str(tmp_path / 'src'), str(tmp_path / 'new'), (6, 8), ['val'])
    with pytest.raises(FileNotFoundError, match='train.*does not exist'):
        downscale_camvid(str(tmp_path / 'src'), str(tmp_path / 'new'), (6, 8))
