"""Test-time augmentation that merges the boundary map too."""
import torch
from mmengine.structures import PixelData

from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS


@MODELS.register_module()
class GSCNNTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` (segmentation probabilities averaged over the
    augmentations) that also averages ``pred_boundary``, the boundary
    probability every augmentation gives at the original image size.
    ``tta_model = dict(type='GSCNNTTAModel')`` in a GSCNN config."""

    def merge_preds(self, data_samples_list):
        merged = super().merge_preds(data_samples_list)
        for out, samples in zip(merged, data_samples_list):
            maps = [ds.pred_boundary.data for ds in samples if 'pred_boundary' in ds]
            if maps:
                out.set_data(dict(pred_boundary=PixelData(data=torch.stack(maps).mean(0))))
        return merged
