# Short name of gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = ['./gscnn-deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py']
