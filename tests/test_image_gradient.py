"""mmgscnn.models.shape_stream.image_gradient: Sobel and Canny maps on
hand-made images, independent of the data preprocessor's mean and std."""
import pytest
import torch
from mmengine.config import ConfigDict

from mmseg.registry import MODELS
from mmgscnn.models.shape_stream import ImageGradient

from helpers import data_preprocessor, make_batch, random_images, tiny_model


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('method', ['sobel', 'canny'])
def test_image_gradient_constant_and_step(method):
    grad = ImageGradient(method)
    const = torch.full((1, 3, 16, 20), 97.0)
    # zero up to float rounding of the convolution
    torch.testing.assert_close(grad(const), torch.zeros(1, 1, 16, 20), atol=1e-6, rtol=0)
    step = torch.zeros(1, 3, 16, 20)
    step[..., 10:] = 200.0
    g = grad(step)[0, 0]
    assert g.shape == (16, 20)
    column_strength = g.sum(dim=0)
    peak = set(column_strength.topk(2).indices.tolist())
    assert peak & {9, 10}, f'peak at {peak}, step between columns 9 and 10'
    assert column_strength[:7].abs().max() < 1e-5 and column_strength[13:].abs().max() < 1e-5
    assert column_strength.max() > 1.0


def test_image_gradient_does_not_depend_on_mean_std():
    outs = []
    for mean, std in (([123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
                      ([0., 0., 0.], [1., 1., 1.]), ([10., 200., 50.], [3., 90., 7.])):
        cfg = tiny_model('fcn')
        cfg.data_preprocessor = ConfigDict(data_preprocessor(mean=mean, std=std))
        model = build(cfg)
        data = make_batch(model, 32, 40, seed=3)
        pixels = model.extract_feat(data['inputs']).image
        outs.append(model.decode_head.shape_stream.image_gradient(pixels))
        raw = torch.stack([d.float() for d in random_images(32, 40, seed=3)])
        torch.testing.assert_close(pixels, raw.flip(1), atol=1e-3, rtol=1e-5)  # bgr->rgb
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(outs[0], outs[2], atol=1e-5, rtol=1e-4)
