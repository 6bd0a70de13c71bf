"""EncoderDecoder that hands the input image to a GatedShapeHead."""
import logging
from typing import List

import torch
from mmengine.logging import print_log
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS


class FeaturesWithImage(list):
    """The backbone's feature levels (a plain list to every mmseg head) plus
    ``image``: the input batch (N, 3, H, W) in pixel units (0..255), which
    the shape stream needs for its image gradient."""

    def __init__(self, feats, image: Tensor):
        super().__init__(feats)
        self.image = image


@MODELS.register_module()
class GSCNNEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` for models whose decode head is a ``GatedShapeHead``.

    Same arguments and behaviour as mmseg's ``EncoderDecoder`` (loss, whole
    and slide inference, auxiliary heads, TTA), with two additions:

    - ``extract_feat`` returns the features together with the image, undoing
      the data preprocessor's mean/std normalisation, so the shape stream's
      image gradient does not depend on them;
    - ``predict`` also stores the boundary probability of every image, at the
      original image size, as ``data_sample.pred_boundary`` (PixelData,
      (1, H, W) in [0, 1]) for visualisation; ``test_cfg=dict(
      with_boundary=False)`` turns that off.

    At build time the backbone (and neck) run once on a small zero image so
    that a shape stream configured with wrong levels or channels fails now,
    with the expected values, instead of in the first training step;
    ``shape_probe_size`` sets that image's side (``None`` skips the probe).
    """

    def __init__(self, *args, shape_probe_size: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        if not hasattr(self.decode_head, 'shape_stream'):
            raise TypeError(
                'GSCNNEncoderDecoder needs decode_head=dict(type=\'GatedShapeHead\', '
                f'decoder=<your decode head>, ...), got {type(self.decode_head).__name__}')
        if shape_probe_size:
            self._probe_feature_levels(shape_probe_size)

    @torch.no_grad()
    def _probe_feature_levels(self, size: int) -> None:
        was_training = self.training
        self.eval()
        try:
            feats = super().extract_feat(torch.zeros(1, 3, size, size))
        except Exception as e:  # a backbone that cannot take this probe image
            print_log(f'GSCNNEncoderDecoder: could not run the backbone on a {size}x{size} '
                      f'probe image ({type(e).__name__}: {e}); the shape stream\'s levels '
                      'and channels are checked at the first forward instead (set '
                      'shape_probe_size to an input size the backbone accepts)',
                      logger='current', level=logging.WARNING)
            return
        finally:
            self.train(was_training)
        self.decode_head.check_inputs(feats)

    def _pixel_image(self, inputs: Tensor) -> Tensor:
        """Undo ``(x - mean) / std`` of the data preprocessor, if it applied one."""
        dp = self.data_preprocessor
        if getattr(dp, '_enable_normalize', False):
            return inputs * dp.std + dp.mean
        return inputs

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        return FeaturesWithImage(super().extract_feat(inputs), self._pixel_image(inputs))

    def predict(self, inputs: Tensor, data_samples=None):
        if not self.test_cfg.get('with_boundary', True):
            return super().predict(inputs, data_samples)
        # The head appends the boundary logits as one more channel, so that
        # slide inference and post-processing (padding, flip, resize to the
        # original size) treat them like the segmentation logits.
        self.decode_head.append_boundary = True
        self.out_channels += 1
        try:
            data_samples = super().predict(inputs, data_samples)
        finally:
            self.decode_head.append_boundary = False
            self.out_channels -= 1
        for ds in data_samples:
            logits = ds.seg_logits.data
            seg_logits, boundary = logits[:-1], logits[-1:]
            if seg_logits.shape[0] > 1:
                pred = seg_logits.argmax(dim=0, keepdim=True)
            else:
                seg_logits = seg_logits.sigmoid()
                pred = (seg_logits > self.decode_head.threshold).to(seg_logits)
            ds.set_data(dict(seg_logits=PixelData(data=seg_logits),
                             pred_sem_seg=PixelData(data=pred),
                             pred_boundary=PixelData(data=boundary.sigmoid())))
        return data_samples
