# DeepLabV3+ R18-D8 (half width) on SyntheticStreet with the Gated-SCNN shape stream
# (README's conversion).
_base_ = ['./deeplabv3plus_r18-d8_synthetic.py']
custom_imports = dict(imports=['mmgscnn'], allow_failed_imports=False)
model = dict(
    type='GSCNNEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='GatedShapeHead',
        decoder={{_base_.model.decode_head}},
        # the paper's widths (64, 32, 16, 8) halved, like this backbone's
        shape_stream=dict(in_channels=[32, 64, 128, 256], channels=(32, 16, 8, 4))))
