from .conv_act import conv2d_add_relu, conv2d_relu
from .upsample import enlarge_bilinear, upsample_bilinear

__all__ = ['conv2d_add_relu', 'conv2d_relu', 'enlarge_bilinear', 'upsample_bilinear']
