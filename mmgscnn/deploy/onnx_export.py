"""ONNX export of a segmentor's whole-image inference at one image size.

The exported graph takes what the config's pipeline hands the data
preprocessor: a float batch (N, 3, H, W) of pixel values 0..255, channels in
the order the pipeline loads them (BGR for mmcv's ``LoadImageFromFile``). The
preprocessor's channel swap (``bgr_to_rgb``) and ``(x - mean) / std`` run
inside the graph, then the model's own whole-image inference
(``encode_decode``). Outputs, both at the input size:

- ``seg_logits`` (N, K, H, W): segmentation logits, as mmseg's
  ``SegDataSample.seg_logits``;
- ``boundary`` (N, 1, H, W): boundary probability in [0, 1], as
  ``GSCNNEncoderDecoder``'s ``pred_boundary`` (GSCNN models only).

The batch size is dynamic; H and W are fixed at export. Slide inference and
test-time augmentation are not part of the graph.

Exporting needs ``onnx`` and ``onnxscript`` (torch's ``dynamo`` exporter);
:func:`compare_with_onnxruntime` needs ``onnxruntime``.
"""
import json
import logging
import os
import os.path as osp
import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

# The lowest opset torch's dynamo exporter translates to without a
# version conversion (a lower request falls back to 18 or fails).
MIN_OPSET = 18
INPUT_NAME = 'image'
SEG_OUTPUT = 'seg_logits'
BOUNDARY_OUTPUT = 'boundary'


class OnnxSegmentor(nn.Module):
    """Whole-image inference of an mmseg segmentor as one traceable module.

    Args:
        model: a built ``EncoderDecoder`` (or ``GSCNNEncoderDecoder``) in eval
            mode, on the CPU.

    Forward: image (N, 3, H, W) float, pixel values 0..255, channels as the
    pipeline loads them -> ``seg_logits`` (N, K, H, W), plus for GSCNN models
    ``boundary`` (N, 1, H, W) probabilities in [0, 1].
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        dp = model.data_preprocessor
        self.bgr_to_rgb = bool(getattr(dp, 'channel_conversion', False))
        self.normalize = bool(getattr(dp, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', dp.mean.detach().clone().view(1, -1, 1, 1))
            self.register_buffer('std', dp.std.detach().clone().view(1, -1, 1, 1))
        self.with_boundary = (hasattr(model, 'encode_decode_with_boundary')
                              and (model.test_cfg or {}).get('with_boundary', True))

    @property
    def output_names(self) -> Tuple[str, ...]:
        return (SEG_OUTPUT, BOUNDARY_OUTPUT) if self.with_boundary else (SEG_OUTPUT, )

    def forward(self, image: Tensor):
        x = image.flip(1) if self.bgr_to_rgb else image
        if self.normalize:
            x = (x - self.mean) / self.std
        h, w = image.shape[-2:]
        # one unpadded, unflipped image of the input size, as mmseg's predict
        # builds for inputs without data samples
        metas = [dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w),
                      padding_size=[0, 0, 0, 0])]
        if not self.with_boundary:
            return self.model.encode_decode(x, metas)
        seg_logits, boundary_logits = self.model.encode_decode_with_boundary(x, metas)
        return seg_logits, boundary_logits.sigmoid()


def _test_padding(data_preprocessor, shape: Tuple[int, int]) -> Optional[Tuple[int, int]]:
    """The size the data preprocessor pads a test image of ``shape`` to, or
    None when it does not pad at test time."""
    test_cfg = getattr(data_preprocessor, 'test_cfg', None)
    if not test_cfg:
        return None
    if test_cfg.get('size') is not None:
        size = test_cfg['size']
        return max(shape[0], int(size[0])), max(shape[1], int(size[1]))
    divisor = test_cfg.get('size_divisor')
    if divisor:
        return tuple(-(-s // divisor) * divisor for s in shape)
    return None


def check_exportable(model: nn.Module, shape: Sequence[int]) -> Tuple[int, int]:
    """Validate ``shape`` (H, W) for ``model``; returns it as a tuple of ints.

    Raises ValueError when the shape is not two positive integers or when the
    data preprocessor would pad a test image of that size (the graph does not
    pad)."""
    if len(shape) != 2 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f'shape must be two positive integers H W, got {list(shape)}')
    shape = (int(shape[0]), int(shape[1]))
    padded = _test_padding(model.data_preprocessor, shape)
    if padded is not None and tuple(padded) != shape:
        raise ValueError(
            f'the data preprocessor pads test images of {shape[0]}x{shape[1]} to '
            f'{padded[0]}x{padded[1]} (data_preprocessor.test_cfg='
            f'{dict(model.data_preprocessor.test_cfg)}), which the exported graph does '
            f'not do: export with --shape {padded[0]} {padded[1]} and pad the images '
            'yourself, or drop data_preprocessor.test_cfg')
    return shape


def load_segmentor(config, checkpoint: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the model of ``config`` (a file or a Config) on the CPU in eval
    mode, SyncBN replaced by BN, with the weights of ``checkpoint`` (a file
    or a URL mmengine can load), loaded strictly."""
    import mmgscnn  # noqa: F401  (registers the plug-in and the checkpoint allowlist)
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model

    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file {config!r} does not exist; pass the '
                                    'config the model was trained with')
        config = Config.fromfile(config)
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file {checkpoint!r} does not exist; pass the '
                                '.pth file written by training (e.g. work_dirs/<config>/'
                                'iter_80000.pth)')
    model = init_model(config, None, device='cpu', cfg_options=cfg_options)
    model = revert_sync_batchnorm(model)
    try:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                               logger='silent')
    except RuntimeError as err:
        raise ValueError(f'checkpoint {checkpoint!r} does not fit the model of the '
                         f'config; use the config it was trained with.\n{err}') from err
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return model.eval()


def _dataset_classes(model: nn.Module) -> Optional[list]:
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    return list(classes) if classes else None


def export_onnx(model: nn.Module, shape: Sequence[int], out: str,
                opset: int = MIN_OPSET) -> OnnxSegmentor:
    """Write ``model``'s whole-image inference at ``shape`` (H, W) to the ONNX
    file ``out`` (one file, weights included), batch size dynamic.

    Returns the exported :class:`OnnxSegmentor` (PyTorch), e.g. for
    :func:`compare_with_onnxruntime`. The model must be on the CPU; it is put
    in eval mode.
    """
    if int(opset) < MIN_OPSET:
        raise ValueError(f'opset {opset} is too low: torch\'s ONNX exporter writes opset '
                         f'{MIN_OPSET} or newer; pass --opset {MIN_OPSET} or higher')
    shape = check_exportable(model, shape)
    test_mode = (model.test_cfg or {}).get('mode', 'whole')
    if test_mode != 'whole':
        from mmengine.logging import print_log
        print_log(f"the config tests with test_cfg.mode={test_mode!r}; the ONNX graph "
                  f"does whole-image inference at {shape[0]}x{shape[1]} (sliding windows "
                  'stay in Python)', logger='current', level=logging.WARNING)
    module = OnnxSegmentor(model.eval()).eval()
    example = torch.zeros(1, 3, *shape)
    batch = torch.export.Dim('batch', min=1)
    # torch's exporter warns about torchvision ops it cannot register (we use
    # none) and about its own use of a deprecated pytree API
    registration = logging.getLogger('torch.onnx._internal.exporter._registration')
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings('ignore', message=r'`isinstance\(treespec, LeafSpec\)`',
                                    category=FutureWarning)
            program = torch.onnx.export(
                module, (example, ), dynamo=True, opset_version=int(opset),
                input_names=[INPUT_NAME], output_names=list(module.output_names),
                dynamic_shapes=({0: batch}, ), verbose=False)
    finally:
        registration.setLevel(level)
    props = program.model.metadata_props
    props['input'] = (f'{INPUT_NAME}: float32 (N, 3, {shape[0]}, {shape[1]}), pixel values '
                      '0..255, channels in the order the pipeline loads them')
    props['outputs'] = json.dumps(list(module.output_names))
    classes = _dataset_classes(model)
    if classes:
        props['classes'] = json.dumps(classes)
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    program.save(out, external_data=False)
    return module


def compare_with_onnxruntime(module: OnnxSegmentor, onnx_file: str,
                             images: Union[Tensor, np.ndarray]) -> dict:
    """Run ``images`` (N, 3, H, W) pixel values through the PyTorch
    ``module`` and the ONNX file (onnxruntime, CPU) and compare.

    Returns, per output name, ``max_abs`` (largest absolute difference) and
    for ``seg_logits`` also ``argmax_agreement`` (fraction of pixels whose
    class is the same, in [0, 1]).
    """
    import onnxruntime as ort

    images = torch.as_tensor(images, dtype=torch.float32)
    session = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    got = session.run(None, {INPUT_NAME: images.numpy()})
    with torch.no_grad():
        ref = module(images)
    ref = ref if isinstance(ref, tuple) else (ref, )
    stats = {}
    for name, g, r in zip(module.output_names, got, ref):
        r = r.numpy()
        if g.shape != r.shape:
            raise ValueError(f'ONNX output {name} has shape {g.shape}, PyTorch {r.shape}')
        stats[name] = dict(max_abs=float(np.abs(g - r).max()))
        if name == SEG_OUTPUT:
            stats[name]['argmax_agreement'] = float(
                (g.argmax(1) == r.argmax(1)).mean())
    return stats
