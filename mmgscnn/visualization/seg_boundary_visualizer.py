"""SegLocalVisualizer drawing readable pictures: image | ground truth |
prediction | boundary map, upscaled, with a class legend and a colour bar."""
from typing import Optional

import mmcv
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import PixelData

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from .colour_keys import boundary_panel, class_legend, colormap_code, colour_bar
from .panel_picture import PanelPicture, compose_panels, upscale, upscale_factor
from .picture_style import MIN_PANEL_WIDTH, PictureStyle

# Legend entry of label ids that are no class (e.g. 255).
IGNORED = 'ignored'


def label_map(pixel_data) -> np.ndarray:
    """(H, W) int64 array of a PixelData (or tensor/array) of shape (1, H, W) or (H, W)."""
    data = getattr(pixel_data, 'data', pixel_data)
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f'a label map must have shape (1, H, W) or (H, W), got '
                         f'{data.shape}')
    return data.astype(np.int64)


@VISUALIZERS.register_module()
class SegBoundaryVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` whose pictures can be read at a glance.

    One picture per sample, panels side by side, each with a title:
    the image | ground truth over it | prediction over it | predicted
    boundary probability (``pred_boundary``, PixelData (1, H, W) in [0, 1],
    as ``GSCNNEncoderDecoder.predict`` stores it). Panels are missing when
    their data is (or ``draw_gt``/``draw_pred``/``draw_image`` leave them
    out). Images narrower than ``min_panel_width`` are upscaled by a whole
    factor (label maps by pixel copies). Below the segmentation panels a
    legend lists the colours of the classes present in the drawn label
    maps (class names are not written on the image; ids that are no class,
    such as 255, are listed as ``'ignored'``); below the boundary
    panel a colour bar gives its scale from 0 to 1.

    Samples with depth maps are drawn by ``SegLocalVisualizer`` unchanged.
    After ``add_datasample``, ``get_image()`` returns the picture.

    Args:
        boundary_cmap: None (default) draws the boundary probability in grey;
            an OpenCV colour map name (e.g. ``'jet'``) colours it.
        draw_image: whether the first panel shows the image alone.
        min_panel_width: width (px) below which panels are upscaled.
        Other arguments: as ``SegLocalVisualizer`` (``alpha``: opacity of the
            label colours over the image).
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[list] = None,
                 save_dir: Optional[str] = None,
                 classes: Optional[list] = None,
                 palette: Optional[list] = None,
                 dataset_name: Optional[str] = None,
                 alpha: float = 0.8,
                 boundary_cmap: Optional[str] = None,
                 draw_image: bool = True,
                 min_panel_width: int = MIN_PANEL_WIDTH,
                 **kwargs):
        super().__init__(name, image, vis_backends, save_dir, classes, palette,
                         dataset_name, alpha, **kwargs)
        if boundary_cmap is not None:
            colormap_code(boundary_cmap)
        if min_panel_width < 1:
            raise ValueError(f'min_panel_width must be a positive number of pixels, got '
                             f'{min_panel_width}')
        self.boundary_cmap = boundary_cmap
        self.draw_image = draw_image
        self.min_panel_width = min_panel_width

    def draw_picture(self,
                     image: np.ndarray,
                     data_sample: SegDataSample,
                     draw_gt: bool = True,
                     draw_pred: bool = True,
                     with_legend: bool = True) -> PanelPicture:
        """The picture of one sample (see the class), with the boxes of its parts.

        Args:
            image: (H, W, 3) uint8 RGB; label and boundary maps must be (H, W).
            data_sample: with any of ``gt_sem_seg``, ``pred_sem_seg``,
                ``pred_boundary``.
            with_legend: draw the legend of class colours.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'image must be (H, W, 3) RGB, got shape {image.shape}')
        size = image.shape[:2]
        factor = upscale_factor(size[1], self.min_panel_width)
        big = upscale(image.astype(np.uint8), factor)
        panels, drawn_labels = [], []
        if self.draw_image:
            panels.append(('image', big))
        for wanted, key, title in ((draw_gt, 'gt_sem_seg', 'ground truth'),
                                   (draw_pred, 'pred_sem_seg', 'prediction')):
            if not (wanted and key in data_sample):
                continue
            labels = label_map(data_sample.get(key))
            if labels.shape != size:
                raise ValueError(f'{key} has size {labels.shape} but the image {size}; '
                                 'draw the image the labels belong to (its original size)')
            panels.append((title, self._overlay(big, upscale(labels, factor, nearest=True))))
            drawn_labels.append(labels)
        with_boundary = draw_pred and 'pred_boundary' in data_sample
        if with_boundary:
            boundary = data_sample.pred_boundary.data
            if tuple(boundary.shape[-2:]) != size:
                raise ValueError(f'pred_boundary has size {tuple(boundary.shape[-2:])} but '
                                 f'the image {size}')
            panels.append(('boundary probability',
                           boundary_panel(boundary, big.shape[:2], self.boundary_cmap)))
        if not panels:
            raise ValueError('nothing to draw: the sample has no gt_sem_seg, pred_sem_seg '
                             'or pred_boundary to draw and draw_image is False')

        style = PictureStyle.for_panel_width(big.shape[1])
        keys, names = [], ()
        if with_legend and drawn_labels:
            classes, palette = self._classes_and_palette()
            ids = np.unique(np.concatenate([m.ravel() for m in drawn_labels]))
            present = [int(i) for i in ids if 0 <= i < len(classes)]
            names = tuple(classes[i] for i in present)
            colours = [palette[i] for i in present]
            if len(present) < len(ids):  # e.g. 255: mmseg darkens the image there
                names += (IGNORED, )
                colours.append((0, 0, 0))
            last = len(panels) - 1 - int(with_boundary)
            keys.append(('legend', 0, last,
                         lambda width: class_legend(names, colours, width, style)))
        if with_boundary:
            keys.append(('colour bar', len(panels) - 1, len(panels) - 1,
                         lambda width: colour_bar(width, style, self.boundary_cmap)))
        picture = compose_panels(panels, keys, style)
        picture.legend = names
        return picture

    def _classes_and_palette(self):
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')
        if not classes or not palette or len(classes) != len(palette):
            raise ValueError('the visualizer needs dataset_meta with as many classes as '
                             f'palette colours to draw label maps, got {self.dataset_meta}; '
                             'set visualizer.dataset_meta = dict(classes=..., palette=...)')
        return classes, palette

    def _overlay(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Label colours over the image with opacity ``alpha`` (mmseg's
        drawing, without class names on the image)."""
        classes, palette = self._classes_and_palette()
        return self._draw_sem_seg(image, PixelData(data=labels[None]), classes, palette,
                                  with_labels=False)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """As ``SegLocalVisualizer.add_datasample``, drawing the picture of
        :meth:`draw_picture`; ``with_labels`` switches the legend."""
        if data_sample is None:
            data_sample = SegDataSample()
        if 'gt_depth_map' in data_sample or 'pred_depth_map' in data_sample:
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred,
                                          show, wait_time, out_file, step, with_labels)
        drawn = self.draw_picture(image, data_sample, draw_gt, draw_pred,
                                  with_legend=bool(with_labels)).image
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
