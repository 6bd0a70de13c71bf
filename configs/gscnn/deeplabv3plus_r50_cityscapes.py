# DeepLabV3+ R50-D8 with the shape stream, Cityscapes 512x1024, 80k.
# Baseline: mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py
_base_ = ['./deeplabv3plus_r101_cityscapes.py']
model = dict(pretrained='open-mmlab://resnet50_v1c', backbone=dict(depth=50))
