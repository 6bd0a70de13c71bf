# DeepLabV3+ R101-D8 with the Gated-SCNN shape stream, Cityscapes 512x1024, 80k.
# Baseline: mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py
_base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
model = dict(
    type='GSCNNEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='GatedShapeHead',
        decoder={{_base_.model.decode_head}},
        shape_stream=dict(in_channels=[256, 512, 1024, 2048])))
# mIoU, boundary F-score at the paper's tolerances and the crop-factor mIoU
# in one tools/test.py run; pictures (--show-dir) get the boundary map.
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='BoundaryFScore', tolerances=(3, 5, 9, 12)),
    dict(type='CropIoUMetric', margins=(0, 100, 200, 300, 400)),
]
test_evaluator = val_evaluator
visualizer = dict(type='SegBoundaryVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
