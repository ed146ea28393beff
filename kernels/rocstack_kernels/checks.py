"""Argument checks that turn bad input into one ValueError naming the argument.

Launchers call these before touching Triton, so a wrong dtype, shape, layout or
device never surfaces as a compiler or driver stack trace.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rocstack_kernels.target import interpreting

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _dtype_names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def check_tensor(name: str, value, *, dtypes: Iterable[torch.dtype] | None = None,
                 ndim: int | Iterable[int] | None = None, contiguous: bool = False,
                 last_dim_contiguous: bool = False) -> torch.Tensor:
    """Check one tensor argument; returns it so calls can be chained."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if dtypes is not None:
        dtypes = tuple(dtypes)
        if value.dtype not in dtypes:
            raise ValueError(f"{name} has dtype {str(value.dtype).replace('torch.', '')}; "
                             f"expected one of {_dtype_names(dtypes)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {tuple(value.shape)}")
    if contiguous and not value.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous() first); "
                         f"got strides {tuple(value.stride())} for shape {tuple(value.shape)}")
    if last_dim_contiguous and value.dim() and value.stride(-1) != 1 and value.shape[-1] > 1:
        raise ValueError(f"{name} must be contiguous in its last dimension, got strides {tuple(value.stride())}")
    return value


def check_same_device(**tensors: torch.Tensor | None) -> torch.device:
    """All given tensors on one device, and that device one the kernels run on."""
    present = {name: t for name, t in tensors.items() if t is not None}
    first_name, first = next(iter(present.items()))
    for name, tensor in present.items():
        if tensor.device != first.device:
            raise ValueError(f"{name} is on {tensor.device} but {first_name} is on {first.device}; "
                             f"move them to one GPU")
    if interpreting():
        if first.device.type != "cpu":
            raise ValueError(f"{first_name} is on {first.device}; under TRITON_INTERPRET=1 pass CPU tensors")
    elif first.device.type != "cuda":
        raise ValueError(f"{first_name} is on {first.device}; these kernels run on a GPU "
                         f"(torch device 'cuda' on ROCm and NVIDIA) or on CPU with TRITON_INTERPRET=1")
    return first.device


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected {tuple(expected)} ({what})")
