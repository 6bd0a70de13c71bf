# As gscnn_pspnet_r18-d8_camvid.py, with the ImageNet ResNet-18 (V1c) backbone (downloads the weights).
_base_ = ['./gscnn_pspnet_r18-d8_camvid.py']
model = dict(pretrained='open-mmlab://resnet18_v1c')
