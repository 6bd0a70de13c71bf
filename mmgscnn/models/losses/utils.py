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


def check_upcast(loss: str, seg_logits: Tensor, seg_label: Tensor, upcast: Tensor) -> None:
    """Refuse an ``upcast_logits`` that is not ``seg_logits`` in the compute
    dtype at the label size (one-line error naming the loss)."""
    if upcast is not None and (upcast.shape != seg_logits.shape
                               or seg_logits.shape[-2:] != seg_label.shape[-2:]
                               or upcast.dtype != compute_dtype(seg_logits)):
        raise ValueError(
            f'{loss} upcast_logits must be seg_logits in {compute_dtype(seg_logits)} at '
            f'the label size {tuple(seg_label.shape)}, got {tuple(upcast.shape)} '
            f'{upcast.dtype} for seg_logits {tuple(seg_logits.shape)}; leave it out '
            f'otherwise')
