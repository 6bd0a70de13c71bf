"""GSCNNTTAModel on a GSCNN model: the merged boundary map and segmentation
are the mean over the original and the flipped image, checked against a
flip averaged by hand."""
import pytest
import torch

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmgscnn.models import GSCNNTTAModel

from helpers import random_images, tiny_model


def sample(h, w, flip):
    return SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), img_path='x.png',
                                       flip=flip, flip_direction='horizontal'))


@pytest.mark.parametrize('size', [(32, 48), (30, 44)], ids=['unpadded', 'padded'])
def test_tta_averages_the_flipped_boundary_map_by_hand(size):
    h, w = size
    torch.manual_seed(0)
    model = MODELS.build(tiny_model('fcn')).eval()
    with torch.no_grad():  # a boundary map far from constant
        model.decode_head.shape_stream.classifier.weight.normal_(0, 1.0)
    image = random_images(h, w, n=1, seed=4)[0]
    flipped = image.flip(-1)

    def predict(img):
        with torch.no_grad():
            return model.test_step(dict(inputs=[img], data_samples=[sample(h, w, False)]))[0]

    plain, mirrored = predict(image), predict(flipped)
    boundary = (plain.pred_boundary.data + mirrored.pred_boundary.data.flip(-1)) / 2
    probs = (plain.seg_logits.data.softmax(0) + mirrored.seg_logits.data.flip(-1).softmax(0)) / 2

    tta = GSCNNTTAModel(module=model)
    with torch.no_grad():
        merged = tta.test_step(dict(inputs=[[image], [flipped]],
                                    data_samples=[[sample(h, w, False)],
                                                  [sample(h, w, True)]]))[0]
    torch.testing.assert_close(merged.pred_boundary.data, boundary, rtol=1e-5, atol=1e-6)
    assert torch.equal(merged.pred_sem_seg.data[0], probs.argmax(0))
    # the flip matters: the map is not symmetric, so an unflipped mean differs
    assert (merged.pred_boundary.data
            - (plain.pred_boundary.data + mirrored.pred_boundary.data) / 2).abs().max() > 1e-3
    assert merged.pred_boundary.data.shape == (1, h, w)
