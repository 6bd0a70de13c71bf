from .gscnn_encoder_decoder import FeaturesWithImage, GSCNNEncoderDecoder

__all__ = ['FeaturesWithImage', 'GSCNNEncoderDecoder']
