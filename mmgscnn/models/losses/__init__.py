from .boundary_attention_loss import BoundaryAttentionLoss
from .boundary_bce_loss import BoundaryBCELoss
from .dual_task_loss import DualTaskLoss

__all__ = ['BoundaryAttentionLoss', 'BoundaryBCELoss', 'DualTaskLoss']
