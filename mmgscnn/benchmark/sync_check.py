"""The host-sync check: mmgscnn's own forward and loss code run under
``torch.cuda.set_sync_debug_mode('error')``, so an op that waits for the
GPU is named with its file and line."""
import contextlib
import os
import os.path as osp

from .groups import REPO
from .measurement import sync
from .precision import amp_context

SYNC_ERROR = 'called a synchronizing CUDA operation'


def _own_losses(head):
    """Loss modules of the head's loss_decode that come from mmgscnn."""
    losses = getattr(head, 'loss_decode', None)
    if losses is None:
        return []
    losses = list(losses) if not hasattr(losses, 'loss_name') else [losses]
    return [m for m in losses if type(m).__module__.startswith('mmgscnn')]


def run_own_code(model, data, check=contextlib.nullcontext):
    """Run mmgscnn's own forward and loss code of a model on a training
    batch, each part inside ``check()``; mmseg's parts (backbone, the
    decoder's cross-entropy and accuracy) run outside it.

    GSCNN: image recovery, shape stream and decoder with the fusion
    (``forward_with_boundary``), then ``GatedShapeHead.loss_by_feat`` with the
    wrapped decoder's own losses left out (boundary targets, boundary BCE,
    attention and dual-task losses). Plain heads: the mmgscnn losses of
    ``loss_decode``. Returns {name: loss tensor} of our losses.
    """
    from unittest import mock
    from mmseg.models.segmentors import EncoderDecoder
    from mmseg.models.utils import resize
    from mmgscnn.models.segmentors.gscnn_encoder_decoder import FeaturesWithImage
    model.train()
    data = model.data_preprocessor(data, True)
    inputs, samples = data['inputs'], data['data_samples']
    head = model.decode_head
    feats = EncoderDecoder.extract_feat(model, inputs)
    if hasattr(head, 'shape_stream'):
        with check():
            x = FeaturesWithImage(feats, inputs, pixel_affine=model._pixel_affine())
            seg_logits, boundary_logits = head.forward_with_boundary(x)
        with mock.patch.object(head.decoder, 'loss_by_feat', lambda *a, **k: {}), check():
            return head.loss_by_feat(seg_logits, boundary_logits, samples)
    own = _own_losses(head)
    if not own:
        return {}
    seg_logits = head.forward(feats)
    seg_label = head._stack_batch_gt(samples).squeeze(1)
    seg_logits = resize(seg_logits, size=seg_label.shape[-2:], mode='bilinear',
                        align_corners=head.align_corners)
    with check():
        return {m.loss_name: m(seg_logits, seg_label, ignore_index=head.ignore_index)
                for m in own}


def _has_own_code(model):
    return hasattr(model.decode_head, 'shape_stream') or bool(_own_losses(model.decode_head))


def check_host_sync(model, data, precision, device):
    """'passed' / 'failed: ...' / 'not run: ...': mmgscnn's forward and loss
    code under ``torch.cuda.set_sync_debug_mode('error')`` (CUDA only)."""
    import torch
    if not _has_own_code(model):
        return 'not applicable: no mmgscnn code in this model'
    if device.type != 'cuda':
        return 'not run: CPU (needs CUDA)'

    @contextlib.contextmanager
    def sync_errors():
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode('error')
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)

    sync(device)
    try:
        with amp_context(precision, device):
            run_own_code(model, data, sync_errors)
    except RuntimeError as e:
        if SYNC_ERROR not in str(e):
            raise
        import traceback
        frames = traceback.extract_tb(e.__traceback__)
        ours = [f for f in frames if f'{os.sep}mmgscnn{os.sep}' in f.filename]
        where = ours[-1] if ours else frames[-1]
        return (f'failed: synchronising op at {osp.relpath(where.filename, REPO)}:'
                f'{where.lineno} ({where.line})')
    finally:
        sync(device)
    return 'passed'
