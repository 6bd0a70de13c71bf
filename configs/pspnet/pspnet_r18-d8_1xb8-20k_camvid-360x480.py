# Baseline: PSPNet ResNet-18-D8 on CamVid (11 classes, 360x480), trained from
# scratch, 20k iterations of batch 8 (about 435 epochs), BN on one GPU.
# mmseg's own parts: model, schedule (and the runtime through the data base).
_base_ = [
    '../_base_/models/pspnet_r18-d8.py',
    '../_base_/datasets/camvid.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}))
