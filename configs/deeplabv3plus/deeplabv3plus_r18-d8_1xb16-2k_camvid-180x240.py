# Baseline of the short GPU study: DeepLabV3+ ResNet-18-D8 (the model of
# deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py) on CamVid downscaled to
# 180x240 (configs/_base_/datasets/camvid_180x240.py), trained from scratch,
# 2000 iterations of batch 16 (about 87 epochs), poly decay ending there, BN
# on one GPU. Train with --amp on a GPU.
_base_ = [
    '../_base_/models/deeplabv3plus_r18-d8.py',
    '../_base_/datasets/camvid_180x240.py',
    '../_base_/schedules/schedule_2k.py',
]
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}))
train_dataloader = dict(batch_size=16)
