"""Base of the fusions that feed the shape stream's boundary map into a
wrapped mmseg decode head, and the choice of a fusion for a head.

A fusion attaches to the wrapped head with forward hooks, so the head's own
``forward`` runs unchanged and its parameter names stay those of the plain
model (a baseline checkpoint loads into it). The boundary map of the running
forward pass is handed over with :meth:`BoundaryFusion.attached`. A new
fusion is a new module registered in ``mmseg.registry.MODELS`` that takes
the decoder as its first argument.
"""
import contextlib

from mmengine.model import BaseModule
from torch import Tensor

from mmseg.models.decode_heads import ASPPHead
from mmseg.models.utils import resize


class BoundaryFusion(BaseModule):
    """Base: keeps the boundary map (N, 1, H_s, W_s) of the running forward."""

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self._boundary = None

    @contextlib.contextmanager
    def attached(self, boundary: Tensor):
        self._boundary = boundary
        try:
            yield
        finally:
            self._boundary = None

    def boundary_at(self, size) -> Tensor:
        """The boundary map averaged down (area) to ``size``."""
        if self._boundary is None:
            raise RuntimeError(
                'the wrapped decode head ran without a boundary map: call it '
                'through GatedShapeHead, not directly')
        b = self._boundary
        if tuple(b.shape[-2:]) == tuple(size):
            return b
        return resize(b, size=tuple(size), mode='area')


def default_fusion_type(decoder) -> str:
    """The fusion used when the config names none: the paper's extra ASPP
    branch for ASPP-family heads, else the fusion before the classifier."""
    return 'ASPPBoundaryFusion' if isinstance(decoder, ASPPHead) else 'ClassifierBoundaryFusion'
