# Plain DeepLabV3+ R18-D8 on CamVid (configs/camvid/deeplabv3plus_r18-d8_camvid.py, no shape
# stream) trained with the dual-task loss next to cross-entropy.
_base_ = ['../camvid/deeplabv3plus_r18-d8_camvid.py']
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(type='DualTaskLoss', loss_weight=1.0),
    ]))
