# Plain DeepLabV3+ R18-D8 on CamVid (no shape stream) trained with the dual-task
# loss next to cross-entropy.
_base_ = ['../deeplabv3plus/deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(type='DualTaskLoss', loss_weight=1.0),
    ]))
