from .aspp_boundary_fusion import ASPPBoundaryFusion
from .boundary_fusion import BoundaryFusion, default_fusion_type
from .boundary_targets import boundary_target, label_boundaries, near_ignore
from .classifier_boundary_fusion import ClassifierBoundaryFusion
from .gated_spatial_conv import GatedSpatialConv
from .image_gradient import (ImageGradient, canny_edges, pixels_and_sobel, sobel,
                             sobel_magnitude)
from .shape_stream import ShapeStream

__all__ = [
    'ASPPBoundaryFusion', 'BoundaryFusion', 'default_fusion_type', 'boundary_target',
    'label_boundaries', 'near_ignore', 'ClassifierBoundaryFusion', 'GatedSpatialConv',
    'ImageGradient', 'canny_edges', 'pixels_and_sobel', 'sobel', 'sobel_magnitude', 'ShapeStream'
]
