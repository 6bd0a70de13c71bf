# SyntheticStreet: the built-in street-like dataset, 10 classes, images
# 120x160 (H x W), 160 train + 40 val by default; no download.
# Data, evaluation and runtime (mmseg's default runtime plus the boundary
# visualizer) of the *_synthetic-96x128 configs.
#
# Write it first:  python tools/generate_synthetic_data.py   (into data/synthetic,
# relative to the working directory; in seconds). Elsewhere: $SYNTHETIC_ROOT, or
# --cfg-options {train,val,test}_dataloader.dataset.data_root=DIR.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)

dataset_type = 'SyntheticStreetDataset'
data_root = '{{$SYNTHETIC_ROOT:data/synthetic}}'
crop_size = (96, 128)
# Checked loading: a bad image or label (unreadable, RGB or 16-bit label, size
# or values outside the 10 classes) stops training with the file's name. The
# test pipeline keeps mmseg's names (inference tools look for them);
# tools/train.py and tools/test.py check it the same way.
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', num_classes=10),
    dict(type='RandomResize', scale=(160, 120), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# Evaluated at the generated size: no resize.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# Small images: the data pipeline costs little next to the model, so the
# loaders use no worker processes (they would compete with training for the CPU).
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='train', seg_map_path='trainannot'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='val', seg_map_path='valannot'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

# mIoU, boundary F-score, Boundary IoU (band 0.02 of the diagonal: 4 px) and
# the paper's crop-factor mIoU in one run.
# BoundaryFScore: tolerances in pixels of the 120x160 images (thin classes are
# 2-4 px wide, so 1-3 px are the informative ones; 5 px as on CamVid).
# CropIoUMetric: the paper's crop factors around the vanishing point, given at
# 1024x2048 and scaled to 120x160 (rows by 120/1024, columns by 160/2048):
# crop factor 400 keeps rows 47 to 60 and columns 70 to 89 (inclusive).
# The last one gives the per-class IoU of the whole image as metric keys
# (whole/IoU.<class>@crop0; IoUMetric only logs them): one crop, no border.
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='BoundaryFScore', tolerances=(1, 2, 3, 5), scale_tolerances=False),
    dict(type='BoundaryIoUMetric', dilation_ratio=0.02),
    dict(type='CropIoUMetric', crop_factors=(0, 100, 200, 300, 400)),
    dict(type='CropIoUMetric', crop_factors=(0, ), vp_border=0, class_keys=True,
         prefix='whole'),
]
test_evaluator = val_evaluator

visualizer = dict(type='SegBoundaryVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
# --tta averages the boundary map over the augmentations too.
tta_model = dict(type='GSCNNTTAModel')
