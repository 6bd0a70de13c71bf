"""mmgscnn.models.segmentors.gscnn_tta_model: boundary maps merged over augmentations."""
import torch
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.models import GSCNNTTAModel

from helpers import tiny_model


def sample(logits, boundary):
    s = SegDataSample(metainfo=dict(img_path='x.png'))
    s.seg_logits = PixelData(data=logits)
    s.pred_boundary = PixelData(data=boundary)
    return s


def test_boundary_map_is_the_mean_over_augmentations():
    tta = GSCNNTTAModel(module=MODELS.build(tiny_model('fcn')))
    logits = torch.randn(4, 6, 8)
    maps = [torch.rand(1, 6, 8) for _ in range(3)]
    merged = tta.merge_preds([[sample(logits, m) for m in maps]])
    assert len(merged) == 1
    torch.testing.assert_close(merged[0].pred_boundary.data, torch.stack(maps).mean(0))
    assert torch.equal(merged[0].pred_sem_seg.data[0], logits.softmax(0).argmax(0))
