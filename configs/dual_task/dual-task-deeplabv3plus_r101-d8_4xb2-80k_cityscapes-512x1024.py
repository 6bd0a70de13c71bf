# Plain DeepLabV3+ R101-D8 (no shape stream) trained with the dual-task loss next
# to cross-entropy: sharper boundaries at no inference cost. The same mmseg parts
# as mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py', '../_base_/datasets/cityscapes.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(depth=101),
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(type='DualTaskLoss', loss_weight=1.0),
    ]))
