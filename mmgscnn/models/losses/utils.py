"""Helpers shared by the boundary losses."""
import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32 and float64 stay as they are
    (float64 keeps ``gradcheck`` exact)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
