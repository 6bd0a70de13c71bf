"""EncoderDecoder that hands the input image to a GatedShapeHead and returns
the boundary map next to the segmentation."""
import logging
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from ...utils.kwargs_check import check_keys
from ..utils import upsample_bilinear


class FeaturesWithImage(list):
    """The backbone's feature levels (a plain list to every mmseg head) plus
    the input image the shape stream needs for its image gradient:

    - ``inputs``: the batch (N, 3, H, W) as the backbone got it;
    - ``pixel_affine``: ``(scale, shift)``, per channel, with ``pixels =
      inputs * scale + shift`` (0..255; the data preprocessor's std and
      mean), or None when ``inputs`` are pixels already;
    - ``image``: the pixels themselves (made on access; the shape stream
      reads ``inputs`` and ``pixel_affine`` instead, so the normalisation
      is undone inside its gradient convolution);
    - ``image_valid``: (N, 1, H, W) bool, False on padding added by the
      data preprocessor (or None when nothing is padded)."""

    def __init__(self, feats, inputs: Tensor, image_valid: Optional[Tensor] = None,
                 pixel_affine: Optional[tuple] = None):
        super().__init__(feats)
        self.inputs = inputs
        self.pixel_affine = pixel_affine
        self.image_valid = image_valid

    @property
    def image(self) -> Tensor:
        if self.pixel_affine is None:
            return self.inputs
        scale, shift = self.pixel_affine
        return self.inputs * scale + shift


def padding_mask(batch_img_metas: List[dict], shape, device) -> Optional[Tensor]:
    """(N, 1, H, W) bool, False on the padding recorded in the metas'
    ``padding_size`` ([left, right, top, bottom], as mmseg's ``stack_batch``
    writes it); None when no image is padded."""
    pads = [m.get('img_padding_size', m.get('padding_size')) for m in batch_img_metas]
    if not any(p is not None and any(p) for p in pads):
        return None
    h, w = shape
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    masks = []
    for p in pads:
        left, right, top, bottom = p if p is not None else (0, 0, 0, 0)
        masks.append((rows >= top) & (rows < h - bottom) & (cols >= left) & (cols < w - right))
    return torch.stack(masks)


@MODELS.register_module()
class GSCNNEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` for models whose decode head is a ``GatedShapeHead``.

    Same arguments and behaviour as mmseg's ``EncoderDecoder`` (loss, whole
    and slide inference, auxiliary heads, TTA), plus:

    - ``shape_head``: ``GatedShapeHead`` arguments (at least
      ``shape_stream=dict(in_channels=[...])``); the configured
      ``decode_head`` is wrapped in a ``GatedShapeHead`` with them, so a
      plain mmseg config becomes a GSCNN one by setting ``type`` and
      ``shape_head``. (A ``decode_head`` that already is a
      ``GatedShapeHead`` is used as it is; then leave ``shape_head`` out.)
    - ``extract_feat`` returns the features together with the image, undoing
      the data preprocessor's mean/std normalisation, so the shape stream's
      image gradient does not depend on them, and the padding mask;
    - ``predict`` also stores the boundary probability of every image, at the
      original image size, as ``data_sample.pred_boundary`` (PixelData,
      (1, H, W) in [0, 1]); ``test_cfg=dict(with_boundary=False)`` turns
      that off.

    At build time the backbone (and neck) run once on a small zero image so
    that a shape stream configured with wrong levels or channels fails now,
    with the expected values, instead of in the first training step;
    ``shape_probe_size`` sets that image's side (``None`` skips the probe).
    """

    def __init__(self, *args, shape_head: Optional[dict] = None,
                 shape_probe_size: int = 64, **kwargs):
        check_keys(kwargs, EncoderDecoder, 'model', also=('shape_head', 'shape_probe_size'))
        kwargs['decode_head'] = self._wrap_decode_head(kwargs.get('decode_head'), shape_head)
        super().__init__(*args, **kwargs)
        if not hasattr(self.decode_head, 'forward_with_boundary'):
            raise TypeError(
                'GSCNNEncoderDecoder needs a GatedShapeHead: give shape_head=dict('
                'shape_stream=dict(in_channels=[...])) to wrap the decode head, got '
                f'decode_head {type(self.decode_head).__name__}')
        if shape_probe_size:
            self._probe_feature_levels(shape_probe_size)

    @staticmethod
    def _wrap_decode_head(decode_head, shape_head):
        is_gated = isinstance(decode_head, dict) and decode_head.get('type') == 'GatedShapeHead'
        if shape_head is None:
            if not is_gated:
                raise TypeError(
                    'GSCNNEncoderDecoder: set model.shape_head=dict(shape_stream=dict('
                    'in_channels=[<channels of every backbone level>])) to add the shape '
                    'stream to the decode head '
                    f"(got decode_head type {(decode_head or {}).get('type')!r})")
            return decode_head
        if not isinstance(shape_head, dict):
            raise TypeError(f'GSCNNEncoderDecoder.shape_head must be a dict of GatedShapeHead '
                            f'arguments, got {shape_head!r}')
        if is_gated:
            raise ValueError('GSCNNEncoderDecoder: the decode head already is a '
                             'GatedShapeHead; set its arguments there and drop shape_head '
                             '(or give the plain decode head)')
        if 'decoder' in shape_head:
            raise ValueError('GSCNNEncoderDecoder.shape_head must not contain decoder: the '
                             'model\'s decode_head is the decoder')
        check_keys(shape_head, 'GatedShapeHead', 'model.shape_head', MODELS)
        return dict(type='GatedShapeHead', decoder=decode_head, **shape_head)

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

    def _pixel_affine(self) -> Optional[tuple]:
        """``(std, mean)`` of the data preprocessor's ``(x - mean) / std``, if it
        applied one (then ``pixels = x * std + mean``), else None."""
        dp = self.data_preprocessor
        if getattr(dp, '_enable_normalize', False):
            return dp.std, dp.mean
        return None

    def extract_feat(self, inputs: Tensor, batch_img_metas: Optional[List[dict]] = None):
        valid = None
        if batch_img_metas is not None:
            valid = padding_mask(batch_img_metas, inputs.shape[-2:], inputs.device)
        return FeaturesWithImage(super().extract_feat(inputs), inputs, valid,
                                 self._pixel_affine())

    def loss(self, inputs: Tensor, data_samples) -> dict:
        x = self.extract_feat(inputs, [ds.metainfo for ds in data_samples])
        losses = dict()
        losses.update(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        return losses

    def encode_decode_with_boundary(self, inputs: Tensor, batch_img_metas: List[dict]) -> tuple:
        """Segmentation and boundary logits at the input size: (N, K, H, W),
        (N, 1, H, W)."""
        x = self.extract_feat(inputs, batch_img_metas)
        return self.decode_head.predict_with_boundary(x, batch_img_metas, self.test_cfg)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.encode_decode_with_boundary(inputs, batch_img_metas)[0]

    def slide_inference_with_boundary(self, inputs: Tensor, batch_img_metas: List[dict]) -> tuple:
        """mmseg's sliding-window inference (``test_cfg`` ``stride`` and
        ``crop_size``), averaging the boundary logits like the segmentation's."""
        h_stride, w_stride = self.test_cfg.stride
        h_crop, w_crop = self.test_cfg.crop_size
        n, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        seg = inputs.new_zeros((n, self.out_channels, h_img, w_img))
        boundary = inputs.new_zeros((n, 1, h_img, w_img))
        count = inputs.new_zeros((1, 1, h_img, w_img))
        valid = padding_mask(batch_img_metas, (h_img, w_img), inputs.device)
        for h_idx in range(h_grids):
            for w_idx in range(w_grids):
                y2 = min(h_idx * h_stride + h_crop, h_img)
                x2 = min(w_idx * w_stride + w_crop, w_img)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                crop = inputs[:, :, y1:y2, x1:x2]
                metas = [dict(m, img_shape=crop.shape[2:]) for m in batch_img_metas]
                x = self.extract_feat(crop)
                if valid is not None:
                    x.image_valid = valid[:, :, y1:y2, x1:x2]
                crop_seg, crop_boundary = self.decode_head.predict_with_boundary(
                    x, metas, self.test_cfg)
                pad = (x1, w_img - x2, y1, h_img - y2)
                seg += F.pad(crop_seg, pad)
                boundary += F.pad(crop_boundary, pad)
                count[:, :, y1:y2, x1:x2] += 1
        return seg / count, boundary / count

    def inference_with_boundary(self, inputs: Tensor, batch_img_metas: List[dict]) -> tuple:
        mode = self.test_cfg.get('mode', 'whole')
        if mode not in ('slide', 'whole'):
            raise ValueError(f"test_cfg.mode must be 'slide' or 'whole', got {mode!r}")
        if mode == 'slide':
            return self.slide_inference_with_boundary(inputs, batch_img_metas)
        return self.encode_decode_with_boundary(inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples=None):
        if not self.test_cfg.get('with_boundary', True):
            return super().predict(inputs, data_samples)
        if data_samples is not None:
            batch_img_metas = [ds.metainfo for ds in data_samples]
        else:
            batch_img_metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                                    pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])
                               ] * inputs.shape[0]
        seg_logits, boundary_logits = self.inference_with_boundary(inputs, batch_img_metas)
        data_samples = self.postprocess_result(seg_logits, data_samples)
        for i, ds in enumerate(data_samples):
            prob = self._restore(boundary_logits[i:i + 1], batch_img_metas[i]).sigmoid()
            ds.set_data(dict(pred_boundary=PixelData(data=prob)))
        return data_samples

    def _restore(self, logits: Tensor, img_meta: dict) -> Tensor:
        """(1, C, H, W) logits of the padded, possibly flipped input -> (C, h, w)
        at the original image size, as mmseg's ``postprocess_result`` does
        for the segmentation."""
        pad = img_meta.get('img_padding_size', img_meta.get('padding_size')) or [0] * 4
        left, right, top, bottom = pad
        H, W = logits.shape[-2:]
        logits = logits[..., top:H - bottom, left:W - right]
        if img_meta.get('flip', False):
            logits = logits.flip(dims=(3, ) if img_meta.get(
                'flip_direction', 'horizontal') == 'horizontal' else (2, ))
        size = img_meta.get('ori_shape', logits.shape[-2:])
        # bilinear, and no interpolation at all when the size is already right
        return upsample_bilinear(logits, size, self.align_corners)[0]
