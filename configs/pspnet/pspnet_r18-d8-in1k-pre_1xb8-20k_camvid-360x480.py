# As pspnet_r18-d8_1xb8-20k_camvid-360x480.py, with the ImageNet ResNet-18 (V1c)
# backbone (downloads the weights).
_base_ = ['./pspnet_r18-d8_1xb8-20k_camvid-360x480.py']
model = dict(pretrained='open-mmlab://resnet18_v1c')
