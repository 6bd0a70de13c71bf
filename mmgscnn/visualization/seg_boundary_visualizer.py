"""SegLocalVisualizer with one more panel: the predicted boundary map."""
from typing import Optional

import cv2
import mmcv
import numpy as np
import torch
from mmengine.dist import master_only

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer


def boundary_panel(boundary, size: tuple, cmap: Optional[str] = None) -> np.ndarray:
    """Picture of a boundary probability map.

    Args:
        boundary: (1, H, W) or (H, W) tensor/array, probabilities in [0, 1].
        size: (height, width) of the panel; the map is resized if needed.
        cmap: None for grey (0 black, 1 white) or an OpenCV colour map name
            (``'jet'``, ``'inferno'``, ``'viridis'``...).

    Returns:
        (height, width, 3) uint8 RGB.
    """
    if isinstance(boundary, torch.Tensor):
        boundary = boundary.detach().float().cpu().numpy()
    prob = np.asarray(boundary, dtype=np.float32).reshape(np.shape(boundary)[-2:])
    grey = np.round(np.clip(prob, 0, 1) * 255).astype(np.uint8)
    if grey.shape != tuple(size):
        grey = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    if cmap is None:
        return np.repeat(grey[..., None], 3, axis=2)
    return cv2.cvtColor(cv2.applyColorMap(grey, _colormap_code(cmap)), cv2.COLOR_BGR2RGB)


def _colormap_code(name: str) -> int:
    code = getattr(cv2, f'COLORMAP_{str(name).upper()}', None)
    if code is None:
        known = sorted(n[len('COLORMAP_'):].lower() for n in dir(cv2)
                       if n.startswith('COLORMAP_'))
        raise ValueError(f'boundary_cmap={name!r} is not an OpenCV colour map; use None '
                         f'(grey) or one of {known}')
    return code


@VISUALIZERS.register_module()
class SegBoundaryVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that also shows ``pred_boundary``.

    When a data sample has ``pred_boundary`` (PixelData (1, H, W), boundary
    probability in [0, 1], as ``GSCNNEncoderDecoder.predict`` stores it) and
    the prediction is drawn, one panel is appended on the right of mmseg's
    picture: ground truth | prediction | boundary map. Otherwise it behaves
    exactly like ``SegLocalVisualizer``. After ``add_datasample`` with a
    boundary, ``get_image()`` returns the whole picture.

    Args:
        boundary_cmap: None (default) draws the boundary probability in grey;
            an OpenCV colour map name (e.g. ``'jet'``) colours it.
        Other arguments: as ``SegLocalVisualizer``.
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
                 **kwargs):
        super().__init__(name, image, vis_backends, save_dir, classes, palette,
                         dataset_name, alpha, **kwargs)
        if boundary_cmap is not None:
            _colormap_code(boundary_cmap)
        self.boundary_cmap = boundary_cmap
        self._captured = None

    def add_image(self, name: str, image: np.ndarray, step: int = 0) -> None:
        if self._captured is not None:  # mmseg's picture, before our panel
            self._captured.append(image)
            return
        super().add_image(name, image, step)

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
        """As ``SegLocalVisualizer.add_datasample``, plus the boundary panel."""
        if not (draw_pred and data_sample is not None and 'pred_boundary' in data_sample):
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred,
                                          show, wait_time, out_file, step, with_labels)
        # Let mmseg draw its panels, catching the picture it would store.
        self._captured = []
        try:
            super().add_datasample(name, image, data_sample, draw_gt, draw_pred,
                                   show=False, wait_time=wait_time, out_file=None,
                                   step=step, with_labels=with_labels)
            drawn = self._captured[0] if self._captured else None
        finally:
            self._captured = None

        panel = boundary_panel(data_sample.pred_boundary.data, image.shape[:2],
                               self.boundary_cmap)
        if drawn is None:
            drawn = panel
        else:
            if drawn.shape[0] > panel.shape[0]:  # e.g. depth maps stacked below
                pad = np.zeros((drawn.shape[0] - panel.shape[0], ) + panel.shape[1:],
                               np.uint8)
                panel = np.concatenate([panel, pad], axis=0)
            drawn = np.concatenate([drawn, panel], axis=1)
        self.set_image(drawn)

        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
