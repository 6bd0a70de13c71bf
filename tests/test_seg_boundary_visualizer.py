"""SegBoundaryVisualizer's pictures: panel sizes and contents, the legend of
the classes present, the colour bar of the boundary map."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from helpers import count_colour, row_with_gradient
from mmgscnn.visualization import PictureStyle, SegBoundaryVisualizer, boundary_colours, upscale

CLASSES = ('road', 'car', 'pole', 'sky', 'tree')
# Pure colours: text (grey on white) and outlines never produce them.
PALETTE = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 255], [0, 255, 255]]
H, W = 24, 32  # upscaled 15x to 360 x 480


def scene(boundary=True, ignore=False):
    """Image, and a sample whose labels use classes 0, 1, 2 (not 3, 4);
    boundary probability 0 in the left half, 1 in the right half."""
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3)).astype(np.uint8)
    gt = np.zeros((H, W), np.int64)
    gt[:, 10:20] = 1
    pred = gt.copy()
    pred[:, 25:] = 2
    if ignore:
        gt[:3] = 255
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None]))
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None]))
    if boundary:
        prob = torch.zeros(1, H, W)
        prob[..., W // 2:] = 1
        sample.pred_boundary = PixelData(data=prob)
    return image, sample


def visualizer(name, **kwargs):
    vis = SegBoundaryVisualizer(name=name, **kwargs)
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    return vis


def crop(picture, box):
    x, y, w, h = box
    return picture.image[y:y + h, x:x + w]


def test_panels_are_upscaled_side_by_side_without_text_on_them():
    image, sample = scene()
    vis = visualizer('layout', alpha=0.6)
    picture = vis.draw_picture(image, sample)
    assert list(picture.panels) == ['image', 'ground truth', 'prediction',
                                    'boundary probability']
    boxes = list(picture.panels.values())
    assert all(box[2:] == (480, 360) for box in boxes)
    assert len({box[1] for box in boxes}) == 1  # one row
    for left, right in zip(boxes, boxes[1:]):
        assert left[0] + left[2] <= right[0]
    assert picture.image.shape[1] >= 4 * 480 and picture.image.dtype == np.uint8
    # the image, bilinearly upscaled
    big = cv2.resize(image, (480, 360), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop(picture, picture.panels['image']), big)
    # the prediction: class colours (pixel copies of the labels) over the image, and
    # nothing else (no class names written on it)
    labels = upscale(sample.pred_sem_seg.data[0].numpy(), 15, nearest=True)
    want = (big * 0.4 + np.array(PALETTE, np.uint8)[labels] * 0.6).astype(np.uint8)
    np.testing.assert_array_equal(crop(picture, picture.panels['prediction']), want)
    # the boundary map, grey: black where the probability is 0, white where it is 1
    boundary = crop(picture, picture.panels['boundary probability'])
    assert (boundary[..., 0] == boundary[..., 1]).all()
    assert (boundary[..., 1] == boundary[..., 2]).all()
    assert (boundary[:, :230] == 0).all() and (boundary[:, 250:] == 255).all()
    # titles sit above the panels: dark text on the background there
    x, top = boxes[0][:2]
    assert top > 0 and (picture.image[:top, x:x + 100] < 100).any()


def test_legend_lists_the_classes_present_below_the_label_panels():
    image, sample = scene(ignore=True)
    picture = visualizer('legend').draw_picture(image, sample)
    # present: 0, 1 (both maps), 2 (prediction), 255 (ground truth)
    assert picture.legend == ('road', 'car', 'pole', 'ignored')
    legend = picture.keys['legend']
    panels = picture.panels
    assert legend[1] >= panels['image'][1] + panels['image'][3]  # below the panels
    assert legend[0] == panels['image'][0]
    assert legend[0] + legend[2] == panels['prediction'][0] + panels['prediction'][2]
    region = crop(picture, legend)
    swatch = PictureStyle().swatch
    for name, colour in zip(CLASSES, PALETTE):
        n = count_colour(region, colour)
        if name in picture.legend:
            assert n >= (swatch - 2) ** 2, name
        else:
            assert n == 0, name  # sky and tree are not in the picture
    assert count_colour(region, (0, 0, 0)) >= (swatch - 2) ** 2  # the 'ignored' swatch
    # only the ground truth drawn: the prediction's 'pole' is not listed
    gt_only = visualizer('legend_gt').draw_picture(image, sample, draw_pred=False)
    assert gt_only.legend == ('road', 'car', 'ignored')
    assert list(gt_only.panels) == ['image', 'ground truth']
    assert count_colour(crop(gt_only, gt_only.keys['legend']), PALETTE[2]) == 0


def test_colour_bar_below_the_boundary_panel():
    image, sample = scene()
    picture = visualizer('bar').draw_picture(image, sample)
    bar, panel = picture.keys['colour bar'], picture.panels['boundary probability']
    assert bar[0] == panel[0] and bar[2] == panel[2] and bar[1] >= panel[1] + panel[3]
    region = crop(picture, bar)
    assert row_with_gradient(region) == 256  # grey ramp 0 -> 1, every level
    # the legend stays left of the bar
    legend = picture.keys['legend']
    assert legend[0] + legend[2] <= bar[0]
    # coloured: the bar shows the colour map's ends, 0 on the left, 1 on the right
    jet = visualizer('bar_jet', boundary_cmap='jet').draw_picture(image, sample)
    region = crop(jet, jet.keys['colour bar'])
    low, high = boundary_colours(np.array([[0.0, 1.0]]), 'jet')[0]
    rows_low, cols_low = np.nonzero((region == low).all(axis=-1))
    rows_high, cols_high = np.nonzero((region == high).all(axis=-1))
    assert len(cols_low) and len(cols_high)
    assert set(rows_low) & set(rows_high)
    assert cols_low.max() < 40 and cols_high.min() > 440
    boundary = crop(jet, jet.panels['boundary probability'])
    assert (boundary[:, :230] == low).all() and (boundary[:, 250:] == high).all()


def test_without_boundary_or_legend():
    image, sample = scene(boundary=False)
    picture = visualizer('no_boundary').draw_picture(image, sample)
    assert list(picture.panels) == ['image', 'ground truth', 'prediction']
    assert list(picture.keys) == ['legend']
    bottom = picture.panels['image'][1] + picture.panels['image'][3]
    assert row_with_gradient(picture.image[bottom:]) == 0  # no colour bar
    no_legend = visualizer('no_legend').draw_picture(image, sample, with_legend=False)
    assert no_legend.keys == {} and no_legend.legend == ()
    assert no_legend.image.shape[0] < picture.image.shape[0]
    # prediction only, without the image panel
    only = visualizer('pred_only', draw_image=False).draw_picture(image, sample,
                                                                 draw_gt=False)
    assert list(only.panels) == ['prediction']


def test_large_images_are_not_upscaled_and_get_larger_text():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (300, 1280, 3)).astype(np.uint8)
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 5, (1, 300, 1280))))
    picture = visualizer('large').draw_picture(image, sample)
    assert picture.panels['image'][2:] == (1280, 300)
    np.testing.assert_array_equal(crop(picture, picture.panels['image']), image)
    assert PictureStyle.for_panel_width(1280).line_height > PictureStyle().line_height


def test_add_datasample_writes_and_keeps_the_picture(tmp_path):
    image, sample = scene()
    vis = visualizer('add')
    want = vis.draw_picture(image, sample).image
    vis.add_datasample('x', image, sample, out_file=str(tmp_path / 'a.png'))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'a.png'))[..., ::-1], want)
    assert vis.get_image().shape == want.shape
    vis.add_datasample('x', image, sample, out_file=str(tmp_path / 'b.png'),
                       with_labels=False)  # no legend
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'b.png'))[..., ::-1],
                                  vis.draw_picture(image, sample, with_legend=False).image)


def test_depth_samples_are_drawn_by_mmseg(tmp_path):
    image, sample = scene(boundary=False)
    sample.pred_depth_map = PixelData(data=torch.rand(1, H, W))
    plain = SegLocalVisualizer(name='plain_depth')
    plain.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    plain.add_datasample('x', image, sample, draw_gt=False, out_file=str(tmp_path / 'a.png'))
    visualizer('ours_depth').add_datasample('x', image, sample, draw_gt=False,
                                            out_file=str(tmp_path / 'b.png'))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'a.png')),
                                  cv2.imread(str(tmp_path / 'b.png')))


def test_bad_input_is_named():
    image, sample = scene()
    with pytest.raises(ValueError, match='boundary_cmap'):
        SegBoundaryVisualizer(name='bad_cmap', boundary_cmap='no-such-map')
    with pytest.raises(ValueError, match='min_panel_width'):
        SegBoundaryVisualizer(name='bad_width', min_panel_width=0)
    vis = visualizer('bad')
    with pytest.raises(ValueError, match=r'pred_sem_seg has size \(24, 32\) but the image'):
        vis.draw_picture(image[:20], sample, draw_gt=False)
    with pytest.raises(ValueError, match='RGB'):
        vis.draw_picture(image[..., 0], sample)
    with pytest.raises(ValueError, match='nothing to draw'):
        visualizer('empty', draw_image=False).draw_picture(image, SegDataSample())
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE[:2])
    with pytest.raises(ValueError, match='as many classes as palette colours'):
        vis.draw_picture(image, sample)
