"""Boundary pictures for GSCNN models whose config keeps mmseg's visualizer.

A config converted from mmseg (``custom_imports``, ``GSCNNEncoderDecoder``,
``shape_head``) inherits mmseg's default runtime, whose visualizer is
``SegLocalVisualizer``: image | ground truth | prediction, without the
boundary map. :func:`use_boundary_visualizer` swaps that one type for
:class:`SegBoundaryVisualizer` (same arguments) when the model has a shape
stream; a visualizer the config chose itself is kept.
"""
MMSEG_DEFAULT = ('SegLocalVisualizer', 'mmseg.SegLocalVisualizer')


def has_shape_stream(model_cfg) -> bool:
    """Whether a segmentor config (or a TTA wrapper of one) has a GatedShapeHead."""
    model_cfg = model_cfg or {}
    if model_cfg.get('module') is not None:  # SegTTAModel / GSCNNTTAModel
        return has_shape_stream(model_cfg['module'])
    head = model_cfg.get('decode_head') or {}
    return (model_cfg.get('type') == 'GSCNNEncoderDecoder'
            or (isinstance(head, dict) and head.get('type') == 'GatedShapeHead'))


def use_boundary_visualizer(cfg) -> bool:
    """Give ``cfg`` (changed in place) ``SegBoundaryVisualizer`` when its model
    has a shape stream and its visualizer is mmseg's default; True if swapped."""
    visualizer = cfg.get('visualizer')
    if not visualizer or visualizer.get('type') not in MMSEG_DEFAULT \
            or not has_shape_stream(cfg.get('model')):
        return False
    visualizer['type'] = 'SegBoundaryVisualizer'
    return True


__all__ = ['has_shape_stream', 'use_boundary_visualizer']
