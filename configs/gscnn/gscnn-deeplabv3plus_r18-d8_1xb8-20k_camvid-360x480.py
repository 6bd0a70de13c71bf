# DeepLabV3+ R18-D8 on CamVid with the Gated-SCNN shape stream.
_base_ = ['../deeplabv3plus/deeplabv3plus_r18-d8_1xb8-20k_camvid-360x480.py']
model = dict(type='GSCNNEncoderDecoder',
             shape_head=dict(shape_stream=dict(in_channels=[64, 128, 256, 512])))
