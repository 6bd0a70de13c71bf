"""Deployment outside PyTorch (ONNX). Not imported by ``import mmgscnn``:
import :mod:`mmgscnn.deploy` explicitly."""
from .onnx_export import (OnnxSegmentor, check_exportable, compare_with_onnxruntime,
                          export_onnx, load_segmentor)

__all__ = ['OnnxSegmentor', 'check_exportable', 'compare_with_onnxruntime', 'export_onnx',
           'load_segmentor']
