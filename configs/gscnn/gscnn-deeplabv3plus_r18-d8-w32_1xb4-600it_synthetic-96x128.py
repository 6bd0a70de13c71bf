# DeepLabV3+ R18-D8 (half width) on SyntheticStreet with the Gated-SCNN shape
# stream, half as wide as the paper's (64, 32, 16, 8), like this backbone.
_base_ = ['../deeplabv3plus/deeplabv3plus_r18-d8-w32_1xb4-600it_synthetic-96x128.py']
model = dict(type='GSCNNEncoderDecoder',
             shape_head=dict(shape_stream=dict(in_channels=[32, 64, 128, 256],
                                               channels=(32, 16, 8, 4))))
