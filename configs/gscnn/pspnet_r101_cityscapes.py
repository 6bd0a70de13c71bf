# PSPNet R101-D8 with the shape stream, Cityscapes 512x1024, 80k. PSPHead has
# no ASPP, so the boundary map joins its features before the classifier.
# Baseline: mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py
_base_ = ['mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
model = dict(
    type='GSCNNEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='GatedShapeHead',
        decoder={{_base_.model.decode_head}},
        shape_stream=dict(in_channels=[256, 512, 1024, 2048])))
