# DeepLabV3+ R101-D8 with the Gated-SCNN shape stream, Cityscapes 512x1024, 80k.
# Built from the same mmseg parts as the baseline
# mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py,
# plus the shape stream (the paper's fusion: one more ASPP branch).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py', '../_base_/datasets/cityscapes.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
model = dict(
    type='GSCNNEncoderDecoder',
    pretrained='open-mmlab://resnet101_v1c',
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(depth=101),
    shape_head=dict(shape_stream=dict(in_channels=[256, 512, 1024, 2048])))
