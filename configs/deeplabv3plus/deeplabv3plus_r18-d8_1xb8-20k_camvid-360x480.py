# Baseline: DeepLabV3+ ResNet-18-D8 on CamVid (11 classes, 360x480), trained
# from scratch, 20k iterations of batch 8 (about 435 epochs), BN on one GPU.
# mmseg's own parts: model, schedule (and the runtime through the data base).
# mmseg's r18 Cityscapes config cannot be the base: it brings Cityscapes'
# data keys, and mmengine refuses keys defined by two bases.
_base_ = [
    '../_base_/models/deeplabv3plus_r18-d8.py',
    '../_base_/datasets/camvid.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
model = dict(data_preprocessor=dict(size={{_base_.crop_size}}))
