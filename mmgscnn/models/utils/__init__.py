from .upsample import enlarge_bilinear, upsample_bilinear

__all__ = ['enlarge_bilinear', 'upsample_bilinear']
