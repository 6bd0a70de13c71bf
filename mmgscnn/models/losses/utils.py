"""Helpers shared by the boundary losses."""
import torch
from torch import Tensor


def upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32 and float64 stay as they are
    (float64 keeps ``gradcheck`` exact)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def as_two_class(logits: Tensor) -> Tensor:
    """Logits of a one-channel (sigmoid, binary) head (N, 1, H, W) as
    two-class softmax logits ``(0, x)`` (N, 2, H, W): ``softmax((0, x))[1] =
    sigmoid(x)``, so label 1 is the foreground. Other logits unchanged."""
    if logits.shape[1] != 1:
        return logits
    return torch.cat([torch.zeros_like(logits), logits], dim=1)


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype :func:`upcast` gives ``x``, without making the copy."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
