"""Small, fast building blocks shared by the tests (CPU only, no downloads)."""
import os
import uuid
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

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


def random_images(h, w, n=2, seed=0):
    """``n`` random (3, h, w) uint8 images from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
            for _ in range(n)]


def make_batch(model, h, w, n=2, seed=0, training=True):
    """``random_images`` with a hand-made label (classes 0, 1 and 2, the top
    three rows ignored), through ``model``'s data preprocessor."""
    imgs = random_images(h, w, n, seed)
    samples = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 4:3 * h // 4, w // 3:] = 1
        label[:, :, :w // 6] = 2
        label[:, :3, :] = 255
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), training)


def two_regions(h=12, w=16, col=8, left=0, right=1):
    """(1, h, w) label map: ``left`` in the columns before ``col``, else ``right``."""
    label = torch.full((1, h, w), right, dtype=torch.long)
    label[..., :col] = left
    return label


def degenerate_cases():
    """(name, seg logits (2, 4, 12, 16), labels (2, 12, 16)) that losses must
    survive: random, all ignored, one class, huge logits, fp16's largest."""
    n, c, h, w = 2, 4, 12, 16
    rand_label = torch.randint(0, c, (n, h, w))
    return [
        ('random', torch.randn(n, c, h, w) * 3, rand_label),
        ('all_ignore', torch.randn(n, c, h, w), torch.full((n, h, w), 255)),
        ('single_class', torch.randn(n, c, h, w), torch.full((n, h, w), 2)),
        ('extreme_logits', torch.randn(n, c, h, w) * 1e4, rand_label),
        ('fp16_max_logits', torch.full((n, c, h, w), 6.0e4), rand_label),
    ]


def losses_on_case(case, autocast, *losses):
    """Each of ``losses`` (callables (seg logits, labels) -> scalar) on a
    ``degenerate_cases`` entry, under bfloat16 autocast when ``autocast``
    -> (their values, gradient of their sum w.r.t. the seg logits)."""
    _, seg, label = case
    seg = seg.clone().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        x = seg * 1.0   # an op under autocast, like a real head's output
        values = [loss(x, label) for loss in losses]
    sum(values).backward()
    return values, seg.grad


def check_loss_name(loss_cls, default):
    """mmseg's loss_decode convention: ``loss_cls`` logs under ``default``,
    takes another name that starts with ``loss_`` and refuses any other."""
    assert loss_cls().loss_name == default
    assert loss_cls(loss_name='loss_custom').loss_name == 'loss_custom'
    with pytest.raises(ValueError, match="must start with 'loss_'"):
        loss_cls(loss_name='dual')


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


def write_images(folder, n=2, h=24, w=32):
    """``n`` scenes of ``draw_scene`` as ``folder``/img<i>.png (the folder is made)."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f'img{i}.png'), draw_scene(rng, h, w)[0])
    return folder


def read_pair(root, split, name):
    """Image and label ``name`` of ``split`` in a CamVid layout: (H, W, 3)
    uint8 RGB image and (H, W) uint8 label."""
    img = cv2.imread(osp.join(root, split, name), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(osp.join(root, split + 'annot', name), cv2.IMREAD_UNCHANGED)
    return img[..., ::-1], label


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


def write_tool_config(path, data_root):
    """Config file of the tiny GSCNN with train, val and test loops, mIoU and
    boundary F-score (1 and 3 px), the boundary visualizer and no work dir,
    as tools/train.py and tools/test.py take it."""
    cfg = tiny_runner_config('unused', data_root, max_iters=2, interval=2)
    cfg.val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='BoundaryFScore', tolerances=(1, 3))]
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    # a name of its own: mmengine keeps one visualizer (and its save_dir) per
    # name per process, and a later test's 'visualizer' would draw into ours
    cfg.visualizer = dict(type='SegBoundaryVisualizer', name=f'vis_{uuid.uuid4().hex[:8]}',
                          vis_backends=[dict(type='LocalVisBackend')])
    cfg.pop('work_dir')
    Config(cfg.to_dict()).dump(str(path))
    return str(path)


def write_study_config(path, data_root, gscnn):
    """Config file of the tiny FCN (``gscnn``: with the shape stream) for the
    experiment runner: 2 iterations, test loop with mIoU, boundary F-score
    and crop mIoU (per-class keys)."""
    cfg = tiny_runner_config('unused', data_root, model=tiny_model('fcn', gscnn=gscnn),
                             max_iters=2, interval=2)
    cfg.val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='BoundaryFScore', tolerances=(1, 2)),
                         dict(type='BoundaryIoUMetric', dilation_ratio=0.02),
                         dict(type='CropIoUMetric', crop_factors=(0, 4), class_keys=True)]
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.pop('work_dir')
    cfg.pop('experiment_name')
    Config(cfg.to_dict()).dump(str(path))
    return str(path)


def trained_tiny(tmp_path):
    """Train the tiny GSCNN for 2 iterations; return (config file, checkpoint,
    data root)."""
    data_root = write_camvid_layout(str(tmp_path / 'data'))
    cfg = tiny_runner_config(tmp_path / 'work', data_root, max_iters=2, interval=2)
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    cfg.test_cfg = dict(type='TestLoop')
    cfg.visualizer = dict(type='SegBoundaryVisualizer', name=f'vis_{tmp_path.name}',
                          vis_backends=[dict(type='LocalVisBackend')])
    Runner.from_cfg(cfg).train()
    cfg.pop('work_dir')
    cfg.pop('experiment_name')
    path = str(tmp_path / 'tiny.py')
    Config(cfg.to_dict()).dump(path)
    return path, str(tmp_path / 'work' / 'iter_2.pth'), data_root


def count_colour(region, colour):
    """Pixels of (H, W, 3) ``region`` that have exactly ``colour``."""
    return int((region == np.array(colour, np.uint8)).all(axis=-1).sum())


def row_with_gradient(region):
    """Most grey levels that one run of a row of ``region`` passes through
    while it rises, never falling, from black (0) to white (255)."""
    best = 0
    for row in region.astype(int):
        grey = (row[:, 0] == row[:, 1]) & (row[:, 1] == row[:, 2])
        rising = grey[1:] & grey[:-1] & (np.diff(row[:, 0]) >= 0)
        ends = np.flatnonzero(np.diff(np.r_[0, rising.astype(int), 0]))
        for start, stop in zip(ends[::2], ends[1::2]):
            run = row[start:stop + 1, 0]
            if run[0] == 0 and run[-1] == 255:
                best = max(best, len(np.unique(run)))
    return best
