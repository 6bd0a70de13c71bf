# Baseline: DeepLabV3+ ResNet-18-D8 on CamVid (11 classes, 360x480), trained
# from scratch, 20k iterations of batch 8 (about 435 epochs), BN on one GPU.
# mmseg's own parts: model, schedule (and the runtime through the data base).
# mmseg's r18 Cityscapes config cannot be the base: it brings Cityscapes'
# data keys, and mmengine refuses keys defined by two bases.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/camvid.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # ResNet-18 widths, as mmseg's deeplabv3plus_r18-d8 configs set them.
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=128, c1_in_channels=64, c1_channels=12,
                     num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg))
