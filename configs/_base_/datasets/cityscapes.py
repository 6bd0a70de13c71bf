# Cityscapes (mmseg's dataset config: trainId labels, 512x1024 crops) with the
# evaluation and pictures of this project: mIoU, boundary F-score at the
# paper's tolerances, Boundary IoU and the crop-factor mIoU in one tools/test.py run;
# --show-dir pictures get the boundary map; TTA averages it too.
_base_ = ['mmseg::_base_/datasets/cityscapes.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='BoundaryFScore', tolerances=(3, 5, 9, 12)),
    dict(type='BoundaryIoUMetric', dilation_ratio=0.02),
    dict(type='CropIoUMetric', crop_factors=(0, 100, 200, 300, 400)),
]
test_evaluator = val_evaluator
visualizer = dict(type='SegBoundaryVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
tta_model = dict(type='GSCNNTTAModel')
