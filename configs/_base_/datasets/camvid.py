# CamVid, 11 classes, images 360x480 (H x W), SegNet split: 367 train, 101 val.
# Data, evaluation and runtime (mmseg's default runtime plus the boundary
# visualizer) of the configs/*/*_camvid-360x480.py configs.
#
# Folder: $CAMVID_ROOT if set, else data/camvid (relative to the working
# directory), laid out as train/ trainannot/ val/ valannot/ (test/ testannot/
# if you have the test split). Elsewhere:  CAMVID_ROOT=DIR python tools/train.py ...
# (or --cfg-options {train,val,test}_dataloader.dataset.data_root=DIR).
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)

dataset_type = 'CamVidDataset'  # label 11 (unlabelled) is read as 255 = ignore
data_root = '{{$CAMVID_ROOT:data/camvid}}'
crop_size = (360, 480)
# Checked loading: a bad image or label (unreadable, RGB or 16-bit label, size
# or values outside the 11 classes) stops training with the file's name. The
# test pipeline keeps mmseg's names (inference tools look for them);
# tools/train.py and tools/test.py check it the same way.
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', num_classes=11),
    dict(type='RandomResize', scale=(480, 360), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# Evaluated at the original 360x480: no resize.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True)
                      for r in img_ratios],
                     [dict(type='RandomFlip', prob=0., direction='horizontal'),
                      dict(type='RandomFlip', prob=1., direction='horizontal')],
                     [dict(type='LoadAnnotations')],
                     [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='train', seg_map_path='trainannot'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='val', seg_map_path='valannot'),
                 pipeline=test_pipeline))
# Validation split as test split; to test on the public test split (233
# images), set test_dataloader.dataset.data_prefix=dict(img_path='test',
# seg_map_path='testannot').
test_dataloader = val_dataloader

# mIoU, boundary F-score, Boundary IoU (band 0.02 of the diagonal: 12 px) and
# the paper's crop-factor mIoU in one run.
# BoundaryFScore: tolerances in pixels of the 360x480 images, not scaled; scaling
# the paper's (3, 5, 9, 12) px at 1024x2048 by the diagonal would give
# (1, 1, 2, 3) px here, so 1, 2 and 3 px cover the paper's range.
# CropIoUMetric: the paper's crop factors around the vanishing point, given at
# 1024x2048 and scaled to 360x480 (rows by 360/1024, columns by 480/2048):
# crop factor 400 keeps rows 141 to 183 and columns 211 to 268 (inclusive).
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

# Pictures of validation/test (SegVisualizationHook, tools/test.py --show-dir)
# get one more panel with the boundary map of GSCNN models.
visualizer = dict(type='SegBoundaryVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
# --tta averages the boundary map over the augmentations too.
tta_model = dict(type='GSCNNTTAModel')
