# Baseline: DeepLabV3+ with a half-width ResNet-18-D8 (levels of 32, 64, 128,
# 256 channels) on SyntheticStreet (10 classes, 96x128 crops of 120x160
# images), from scratch, BN; a short schedule for a few minutes on a CPU:
# 600 iterations of batch 4 (15 epochs of the 160 training images), SGD with
# mmseg's lr 0.01 (the GSCNN version diverges at 0.05).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/synthetic.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(depth=18, stem_channels=32, base_channels=32, norm_cfg=norm_cfg),
    # ASPP rates for 12x16 feature maps (the Cityscapes rates 12-36 would only see padding)
    decode_head=dict(in_channels=256, channels=64, c1_in_channels=32, c1_channels=12,
                     dilations=(1, 3, 6, 9), num_classes=10, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=10, norm_cfg=norm_cfg))
train_dataloader = dict(batch_size=4)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=600,
                        by_epoch=False)]
train_cfg = dict(max_iters=600, val_interval=200)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=200, max_keep_ckpts=1))
