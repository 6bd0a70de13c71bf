"""DualTaskLoss as a plain ``loss_decode`` entry of unmodified mmseg models."""
import textwrap

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from helpers import TINY_CLASSES, draw_scene, tiny_runner_config, write_camvid_layout

MMSEG_CONFIGS = {
    'FCNHead': 'fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'PSPHead': 'pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'DepthwiseSeparableASPPHead':
    'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
}


def user_config(tmp_path, head):
    """mmseg's own R18 config (BN, no download, our classes) plus only the
    dual-task loss entry, as a user would write it."""
    path = tmp_path / f'{head}.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = ['mmseg::{MMSEG_CONFIGS[head]}']
        custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            pretrained=None,
            data_preprocessor=dict(size=None, size_divisor=8),
            backbone=dict(norm_cfg=norm_cfg),
            decode_head=dict(
                num_classes={len(TINY_CLASSES)}, norm_cfg=norm_cfg,
                loss_decode=[
                    dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                    dict(type='DualTaskLoss', loss_weight=1.0),
                ]),
            auxiliary_head=dict(num_classes={len(TINY_CLASSES)}, norm_cfg=norm_cfg))
    '''))
    return Config.fromfile(str(path))


def batch(model, h=40, w=48, ignore=True):
    rng = np.random.default_rng(0)
    imgs, samples = [], []
    for _ in range(2):
        img, label = draw_scene(rng, h, w)
        label = torch.from_numpy(label).long()[None]
        if ignore:
            label[:, :, :24] = 255
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


@pytest.mark.parametrize('head', list(MMSEG_CONFIGS))
def test_dual_task_loss_in_plain_mmseg_model(tmp_path, head):
    cfg = user_config(tmp_path, head)
    assert cfg.model.type == 'EncoderDecoder' and cfg.model.decode_head.type == head
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = batch(model)

    # gradients of the dual-task loss alone reach the decode head
    losses = model(**data, mode='loss')
    assert 'decode.loss_dual_task' in losses and 'decode.loss_ce' in losses
    model.zero_grad()
    losses['decode.loss_dual_task'].backward()
    grads = [p.grad for p in model.decode_head.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0

    # ignored pixels: changing the logits there leaves the loss unchanged
    head_module = model.decode_head
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        seg_logits = head_module(feats)
    torch.manual_seed(0)
    ref = head_module.loss_by_feat(seg_logits, data['data_samples'])['loss_dual_task']
    # the label is ignored on columns < 24 of 48; the first logit column only
    # reaches image columns < 12 when upsampled (stride 4 or 8)
    changed = seg_logits.clone()
    changed[..., :1] += 5 * torch.randn_like(changed[..., :1])
    torch.manual_seed(0)
    again = head_module.loss_by_feat(changed, data['data_samples'])['loss_dual_task']
    assert torch.allclose(ref, again), (ref, again)

    # finite under bf16 autocast
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_dual_task_loss_logged_in_runner_training(tmp_path):
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    model = user_config(tmp_path, 'DepthwiseSeparableASPPHead').model
    cfg = tiny_runner_config(tmp_path / 'work', data_root, model=model, max_iters=2,
                             interval=2, val=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.log_scalars['train/decode.loss_dual_task']
    values = history.data[0]
    assert len(values) == 2 and np.isfinite(values).all() and (values > 0).all()
