# DeepLabV3+ R18-D8 on CamVid with the Gated-SCNN shape stream (README's conversion).
_base_ = ['./deeplabv3plus_r18-d8_camvid.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
model = dict(
    type='GSCNNEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='GatedShapeHead',
        decoder={{_base_.model.decode_head}},
        shape_stream=dict(in_channels=[64, 128, 256, 512])))
