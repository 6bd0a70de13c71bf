# PSPNet ResNet-18-D8 for CamVid's 11 classes, from scratch, BN on one GPU:
# mmseg's R50-D8 model with the ResNet-18 widths of mmseg's pspnet_r18-d8
# configs. Configs add data_preprocessor.size (their crop).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=128, num_classes=11, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=11, norm_cfg=norm_cfg))
