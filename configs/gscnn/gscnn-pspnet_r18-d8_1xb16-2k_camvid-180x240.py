# PSPNet R18-D8 on CamVid at 180x240 (2000 iterations, batch 16) with the
# Gated-SCNN shape stream.
_base_ = ['../pspnet/pspnet_r18-d8_1xb16-2k_camvid-180x240.py']
model = dict(type='GSCNNEncoderDecoder',
             shape_head=dict(shape_stream=dict(in_channels=[64, 128, 256, 512])))
