# DeepLabV3+ R50-D8 with the shape stream, Cityscapes 512x1024, 80k.
_base_ = ['./gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py']
model = dict(pretrained='open-mmlab://resnet50_v1c', backbone=dict(depth=50))
