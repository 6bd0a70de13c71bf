"""Small, fast building blocks shared by the tests (CPU only, no downloads)."""
import os
import uuid
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config

NORM = dict(type='BN', requires_grad=True)
# ResNetV1c-18 with narrow stages: levels have 8, 16, 32, 64 channels.
TINY_CHANNELS = [8, 16, 32, 64]
TINY_CLASSES = ('background', 'box', 'disc', 'bar')


def tiny_backbone(**kwargs):
    cfg = dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
               dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM,
               contract_dilation=True, stem_channels=16, base_channels=8)
    cfg.update(kwargs)
    return cfg


def tiny_decoder(kind='sepaspp', num_classes=len(TINY_CLASSES), **kwargs):
    """Config of a small mmseg decode head on the tiny backbone's levels."""
    common = dict(channels=16, dropout_ratio=0.1, num_classes=num_classes,
                  norm_cfg=NORM, align_corners=False,
                  loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                   loss_weight=1.0))
    heads = dict(
        sepaspp=dict(type='DepthwiseSeparableASPPHead', in_channels=64, in_index=3,
                     dilations=(1, 2, 3, 4), c1_in_channels=8, c1_channels=8),
        aspp=dict(type='ASPPHead', in_channels=64, in_index=3, dilations=(1, 2, 3, 4)),
        psp=dict(type='PSPHead', in_channels=64, in_index=3, pool_scales=(1, 2, 3, 6)),
        fcn=dict(type='FCNHead', in_channels=64, in_index=3, num_convs=2,
                 concat_input=True),
        uper=dict(type='UPerHead', in_channels=TINY_CHANNELS, in_index=[0, 1, 2, 3],
                  pool_scales=(1, 2, 3, 6)),
    )
    cfg = dict(heads[kind], **common)
    cfg.update(kwargs)
    return cfg


def data_preprocessor(**kwargs):
    cfg = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
               seg_pad_val=255, size_divisor=8)
    cfg.update(kwargs)
    return cfg


def tiny_model(decoder='sepaspp', gscnn=True, backbone=None, shape_stream=None,
               head_kwargs=None, **decoder_kwargs):
    """A tiny segmentor config: plain EncoderDecoder, or GSCNN around it."""
    dec = tiny_decoder(decoder, **decoder_kwargs)
    cfg = dict(type='EncoderDecoder', data_preprocessor=data_preprocessor(),
               backbone=backbone or tiny_backbone(), decode_head=dec,
               train_cfg=dict(), test_cfg=dict(mode='whole'))
    if gscnn:
        stream = dict(in_channels=TINY_CHANNELS, channels=(8, 8, 8, 4))
        stream.update(shape_stream or {})
        head = dict(shape_stream=stream, fusion=dict(channels=8))
        head.update(head_kwargs or {})
        cfg.update(type='GSCNNEncoderDecoder', shape_head=head)
    return Config(dict(model=cfg)).model


def draw_scene(rng, h=48, w=64):
    """An image with a few shapes and its label map (class ids of TINY_CLASSES)."""
    label = np.zeros((h, w), np.uint8)
    x0, y0 = rng.integers(2, w // 2), rng.integers(2, h // 2)
    label[y0:y0 + rng.integers(8, h // 2), x0:x0 + rng.integers(8, w // 2)] = 1
    cv2.circle(label, (int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))),
               int(rng.integers(4, 10)), 2, -1)
    xb = int(rng.integers(2, w - 4))
    label[:, xb:xb + 2] = 3
    colours = np.array([[40, 40, 40], [200, 60, 60], [60, 200, 60], [220, 220, 40]],
                       np.float32)
    img = colours[label] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), label


def write_camvid_layout(root, n_train=6, n_val=2, seed=0, h=48, w=64):
    """Write a tiny dataset in the CamVid layout (train/, trainannot/, val/,
    valannot/; image and label share the file name)."""
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('val', n_val)):
        for i in range(n):
            img, label = draw_scene(rng, h, w)
            for folder, arr in ((split, img), (split + 'annot', label)):
                path = osp.join(root, folder, f'{split}_{i:03d}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                cv2.imwrite(path, arr)
    return root


def write_camvid(root, h=24, w=32, splits=(('train', 2), ('val', 2))):
    """Tiny CamVid layout whose labels use raw ids 0..11 (11 = unlabelled).
    Returns {path of each label: raw label array}."""
    rng = np.random.default_rng(0)
    labels = {}
    for split, n in splits:
        for i in range(n):
            img, _ = draw_scene(rng, h, w)
            label = rng.integers(0, 12, (h, w)).astype(np.uint8)
            label[:4, :] = 11
            for folder, arr in ((split, img), (split + 'annot', label)):
                path = osp.join(root, folder, f'{split}_{i:03d}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                cv2.imwrite(path, arr)
            labels[path] = label
    return labels


def tiny_runner_config(work_dir, data_root, model=None, max_iters=4, interval=2,
                       val=True, batch_size=2, crop=(32, 48)):
    """A complete mmengine Runner config: tiny model, tiny data, SGD."""
    train_pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
        dict(type='RandomCrop', crop_size=crop), dict(type='RandomFlip', prob=0.5),
        dict(type='PackSegInputs')]
    test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                     dict(type='PackSegInputs')]

    def dataset(split, pipeline):
        return dict(type='BaseSegDataset', data_root=data_root,
                    metainfo=dict(classes=TINY_CLASSES),
                    img_suffix='.png', seg_map_suffix='.png',
                    data_prefix=dict(img_path=split, seg_map_path=split + 'annot'),
                    pipeline=pipeline)

    cfg = dict(
        default_scope='mmseg',
        work_dir=str(work_dir),
        # unique: Runners started in the same second would share a logger
        experiment_name=f'{osp.basename(str(work_dir))}_{uuid.uuid4().hex[:8]}',
        model=model or tiny_model(),
        train_dataloader=dict(batch_size=batch_size, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              dataset=dataset('train', train_pipeline)),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                          weight_decay=5e-4)),
        param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                              end=max_iters, by_epoch=False)],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=interval if val else max_iters + 1),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'),
                     mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0)),
        log_processor=dict(by_epoch=False),
        log_level='WARNING',
        randomness=dict(seed=0),
    )
    if val:
        cfg.update(
            val_dataloader=dict(batch_size=1, num_workers=0,
                                sampler=dict(type='DefaultSampler', shuffle=False),
                                dataset=dataset('val', test_pipeline)),
            val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
            val_cfg=dict(type='ValLoop'))
    return Config(cfg)
