from .boundary_fscore import BoundaryFScore, disk_dilate
from .boundary_iou import BoundaryIoUMetric
from .crop_iou_metric import CropIoUMetric

__all__ = ['BoundaryFScore', 'BoundaryIoUMetric', 'CropIoUMetric', 'disk_dilate']
