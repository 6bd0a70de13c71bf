from .gscnn_encoder_decoder import FeaturesWithImage, GSCNNEncoderDecoder, padding_mask
from .gscnn_tta_model import GSCNNTTAModel

__all__ = ['FeaturesWithImage', 'GSCNNEncoderDecoder', 'GSCNNTTAModel', 'padding_mask']
