"""Input checks shared by the attention launchers.

Attention-specific checks (dtype pairing, head layout, prefix sums); the generic
ones (tensor type, device) are ``rocstack_kernels.checks``. Each raises one
ValueError whose message starts with the argument's name.
"""

from __future__ import annotations

import math

import torch

from rocstack_kernels.checks import check_tensor

ATTENTION_DTYPES = (torch.float16, torch.bfloat16)


def check_attention_dtype(**tensors) -> None:
    """Same float16/bfloat16 dtype for all given tensors."""
    names = list(tensors)
    ref = tensors[names[0]]
    for name in names:
        dtype = tensors[name].dtype
        if dtype not in ATTENTION_DTYPES:
            raise ValueError(f"{name} has dtype {dtype}; use torch.float16 or torch.bfloat16")
        if dtype != ref.dtype:
            raise ValueError(f"{name} has dtype {dtype} but {names[0]} has {ref.dtype}; use one dtype")


def check_head_dim(name: str, head_dim: int, supported: tuple[int, ...]) -> None:
    if head_dim not in supported:
        raise ValueError(f"{name} has head_dim {head_dim}; supported: {list(supported)}")


def check_heads(num_heads_q: int, num_heads_kv: int, kv_name: str = "k") -> None:
    if num_heads_kv == 0 or num_heads_q % num_heads_kv:
        raise ValueError(f"{kv_name} has {num_heads_kv} kv heads, which must divide the {num_heads_q} "
                         "query heads (MHA, GQA or MQA)")


def check_int32_vector(name: str, t, length: int | None = None) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.dtype != torch.int32:
        got = f"{t.dtype} with shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a 1-D torch.int32 tensor, got {got}")
    if length is not None and t.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {t.shape[0]}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous; call .contiguous()")


def check_cu_seqlens(name: str, cu: torch.Tensor, total_tokens: int) -> int:
    """Validate prefix sums ``[0, ..., total_tokens]``; returns the longest sequence.

    One host sync reads first, last, smallest and largest step together.
    """
    check_int32_vector(name, cu)
    if cu.shape[0] < 1:
        raise ValueError(f"{name} needs at least one entry (0)")
    if cu.shape[0] == 1:
        steps_min = steps_max = 0
        first = last = int(cu[0].item())
    else:
        steps = cu[1:] - cu[:-1]
        first, last, steps_min, steps_max = torch.stack(
            [cu[0], cu[-1], steps.min(), steps.max()]).tolist()
    if first != 0 or last != total_tokens:
        raise ValueError(f"{name} must start at 0 and end at the token count {total_tokens}, "
                         f"got {first}..{last}")
    if steps_min < 0:
        raise ValueError(f"{name} must be non-decreasing (prefix sums of sequence lengths)")
    return int(steps_max)


def resolve_softmax_scale(softmax_scale, head_dim: int) -> float:
    if softmax_scale is None:
        return 1.0 / math.sqrt(head_dim)
    scale = float(softmax_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"softmax_scale must be a positive finite number, got {softmax_scale!r}")
    return scale


def output_buffer(out, like: torch.Tensor) -> torch.Tensor:
    """``out`` checked to match ``like`` (shape, dtype, device), or a new tensor when None."""
    if out is None:
        return torch.empty_like(like)
    check_tensor("out", out, dtypes=(like.dtype,), last_dim_contiguous=True)
    if tuple(out.shape) != tuple(like.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}; expected {tuple(like.shape)} (same as q)")
    if out.device != like.device:
        raise ValueError(f"out is on {out.device} but q is on {like.device}")
    return out
