from .boundary import label_boundaries
from .boundary_fusion import (ASPPBoundaryFusion, ClassifierBoundaryFusion,
                              build_boundary_fusion)
from .gated_spatial_conv import GatedSpatialConv
from .image_gradient import ImageGradient, canny_edges, sobel_magnitude
from .shape_stream import ShapeStream

__all__ = [
    'label_boundaries', 'ASPPBoundaryFusion', 'ClassifierBoundaryFusion',
    'build_boundary_fusion', 'GatedSpatialConv', 'ImageGradient', 'canny_edges',
    'sobel_magnitude', 'ShapeStream'
]
