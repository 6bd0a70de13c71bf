from .boundary_fscore import BoundaryFScore, disk_dilate
from .crop_iou_metric import CropIoUMetric

__all__ = ['BoundaryFScore', 'CropIoUMetric', 'disk_dilate']
