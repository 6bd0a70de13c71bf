# Plain PSPNet R101-D8 (mmseg's config, no shape stream) trained with the
# dual-task loss next to cross-entropy: sharper boundaries at no inference cost.
_base_ = ['mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
model = dict(
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(type='DualTaskLoss', loss_weight=1.0),
    ]))
