"""Pictures of predictions: the visualizer registered in
``mmseg.registry.VISUALIZERS`` and the parts of its pictures."""
from .colour_keys import boundary_colours, boundary_panel, class_legend, colour_bar
from .panel_picture import PanelPicture, compose_panels, upscale, upscale_factor
from .picture_style import MIN_PANEL_WIDTH, PictureStyle
from .seg_boundary_visualizer import SegBoundaryVisualizer

__all__ = ['SegBoundaryVisualizer', 'PanelPicture', 'PictureStyle', 'MIN_PANEL_WIDTH',
           'boundary_colours', 'boundary_panel', 'class_legend', 'colour_bar',
           'compose_panels', 'upscale', 'upscale_factor']
