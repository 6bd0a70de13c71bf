"""Export a trained model to ONNX (whole-image inference at one image size).

    python tools/export_onnx.py CONFIG CHECKPOINT --shape H W --out FILE.onnx
                                [--opset 18] [--check] [--cfg-options k=v ...]

The program is :mod:`mmgscnn.cli.export_onnx`.
"""
import sys

from mmgscnn.cli.export_onnx import main

if __name__ == '__main__':
    sys.exit(main())
