# CamVid downscaled to 180x240 (H x W), for short studies (the GPU study of
# configs/studies/camvid-gpu-180x240.py): the data, evaluation and runtime of
# camvid.py with half-size images.
#
# Folder: $CAMVID_ROOT if set, else data/camvid-180x240, written by
#   python tools/downscale_camvid.py --src <CamVid folder> --out-dir data/camvid-180x240
# (images cv2.INTER_AREA, JPEG quality 92; labels cv2.INTER_NEAREST, PNG).
_base_ = ['./camvid.py']

data_root = '{{$CAMVID_ROOT:data/camvid-180x240}}'
crop_size = (180, 240)
# Checked loading: a bad image or label (unreadable, RGB or 16-bit label, size
# or values outside the 11 classes) stops training with the file's name. The
# test pipeline keeps mmseg's names (inference tools look for them);
# tools/train.py and tools/test.py check it the same way.
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', num_classes=11),
    dict(type='RandomResize', scale=(240, 180), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, img_suffix='.jpg', pipeline=train_pipeline))
# Evaluated at 180x240 on the downscaled val split (camvid.py's test pipeline: no resize).
val_dataloader = dict(dataset=dict(data_root=data_root, img_suffix='.jpg'))
test_dataloader = val_dataloader

# Metrics of camvid.py: boundary F tolerances in pixels of these images, not
# scaled; crop factors scaled to 180x240 by the metric (crop factor 400 keeps
# rows 70 to 91 and columns 105 to 134, inclusive); per-class IoU of the
# whole image (whole/IoU.<class>@crop0).
