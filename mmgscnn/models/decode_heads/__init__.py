from .gated_shape_head import GatedShapeHead

__all__ = ['GatedShapeHead']
