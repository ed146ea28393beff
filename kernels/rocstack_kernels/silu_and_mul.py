"""SwiGLU gate ``silu_and_mul``: Triton kernel, launcher, torch reference.

``x[..., :d]`` is the gate and ``x[..., d:]`` the up projection (the layout of a
fused gate/up GEMM output); ``out = silu(gate) * up`` computed in fp32, rounded once.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from rocstack_kernels.checks import FLOAT_DTYPES, check_same_device, check_shape, check_tensor
from rocstack_kernels.configs import (
    config_for,
    known_keys,
    launch_options,
    override_from_key,
    override_key,
    with_override,
)
from rocstack_kernels.launch import cdiv, next_power_of_2
from rocstack_kernels.registry import BenchCase, BenchSetup, KernelEntry, Specialization
from rocstack_kernels.target import Target, target_of


@triton.jit
def _silu_and_mul_kernel(x_ptr, out_ptr, stride_x, stride_out, d, BLOCK: tl.constexpr):
    # One flat grid, a row's blocks before the next row's: programs the GPU starts
    # together read and write neighbouring addresses, as a 1-D elementwise kernel's do
    # (a (rows, blocks) grid starts a column of blocks, one row's length apart, together).
    pid = tl.program_id(0)
    blocks = tl.cdiv(d, BLOCK)
    row = (pid // blocks).to(tl.int64)
    cols = (pid % blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < d
    gate = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * stride_x + d + cols, mask=mask, other=0.0).to(tl.float32)
    out = gate * tl.sigmoid(gate) * up
    tl.store(out_ptr + row * stride_out + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


def _plan(target: Target, d: int, override: dict | None = None) -> tuple[dict, dict]:
    """Constexprs and options of one launch (cached; callers must not modify them).

    ``override`` replaces keys of the arch's config (``block``, ``num_warps``): for sweeps.
    """
    return _cached_plan(target, d, override_key(override))


@functools.lru_cache(maxsize=256)
def _cached_plan(target: Target, d: int, override: str | None) -> tuple[dict, dict]:
    config = with_override(config_for("silu_and_mul", target), override_from_key(override),
                           known_keys("silu_and_mul"), "silu_and_mul")
    # No wider than the row: a block past d only adds masked-off lanes.
    return {"BLOCK": min(config["block"], next_power_of_2(d))}, launch_options(config, target)


def silu_and_mul(x: torch.Tensor, out: torch.Tensor | None = None, config: dict | None = None) -> torch.Tensor:
    """``silu(x[..., :d]) * x[..., d:]`` for ``x`` of last dim ``2*d``; returns ``out`` [..., d].

    ``config`` overrides keys of the per-arch launch config; it exists for tuning sweeps.
    """
    check_tensor("x", x, dtypes=FLOAT_DTYPES, last_dim_contiguous=True)
    if x.dim() == 0 or x.shape[-1] % 2:
        raise ValueError(f"x must have an even last dimension (gate and up halves), got shape {tuple(x.shape)}")
    d = x.shape[-1] // 2
    if x.dim() != 2 and not x.is_contiguous():
        raise ValueError(f"x must be 2-D with a contiguous last dimension or contiguous N-D; "
                         f"got strides {tuple(x.stride())}")
    x2 = x if x.dim() == 2 else x.reshape(-1, 2 * d)
    if out is None:
        out = torch.empty((*x.shape[:-1], d), dtype=x.dtype, device=x.device)
    else:
        check_tensor("out", out, dtypes=(x.dtype,), contiguous=True)
        check_shape("out", out, (*x.shape[:-1], d), "x's shape with the last dim halved")
    check_same_device(x=x, out=out)
    out2 = out.view(-1, d)
    if x2.shape[0] == 0 or d == 0:
        return out
    constexprs, options = _plan(target_of(x.device), d, config)
    grid = (x2.shape[0] * cdiv(d, constexprs["BLOCK"]),)
    _silu_and_mul_kernel[grid](x2, out2, x2.stride(0), out2.stride(0), d, **constexprs, **options)
    return out


def silu_and_mul_torch(x: torch.Tensor, compute_dtype=torch.float32) -> torch.Tensor:
    """The same in torch; float64 input and compute_dtype make it the reference."""
    d = x.shape[-1] // 2
    xc = x.to(compute_dtype)
    return (F.silu(xc[..., :d]) * xc[..., d:]).to(x.dtype)


AOT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


AOT_D = (512, 1024, 2048, 4096, 8192, 14336)


def _specializations(target: Target) -> list[Specialization]:
    specs, seen = [], set()
    for dtype in AOT_DTYPES:
        for d in AOT_D:
            constexprs, options = _plan(target, d)
            if (dtype, constexprs["BLOCK"]) in seen:
                continue
            seen.add((dtype, constexprs["BLOCK"]))
            specs.append(Specialization(_silu_and_mul_kernel, f"{str(dtype)[6:]} block={constexprs['BLOCK']}",
                                        {"x_ptr": dtype, "out_ptr": dtype, "stride_x": 2 * d, "stride_out": d,
                                         "d": d, **constexprs}, options))
    return specs


@functools.cache
def _compiled():
    return torch.compile(silu_and_mul_torch, dynamic=False)


def _bench(rows: int, d: int, graph: bool = False) -> BenchCase:
    """Eager, or with ``graph`` every implementation replayed from a CUDA graph (GPU time only)."""
    def setup(device) -> BenchSetup:
        from rocstack_kernels.graph_replay import GraphReplay

        wrap = GraphReplay if graph else (lambda fn: fn)
        x = torch.randn(rows, 2 * d, device=device, dtype=torch.bfloat16)
        return BenchSetup(run=wrap(lambda: silu_and_mul(x)), ceiling="copy",
                          bytes_moved=3 * rows * d * x.element_size(),
                          peers={"torch eager": wrap(lambda: silu_and_mul_torch(x, torch.bfloat16)),
                                 "torch.compile": wrap(lambda: _compiled()(x, torch.bfloat16))},
                          variant=lambda config: wrap(lambda: silu_and_mul(x, config=config)))
    return BenchCase(f"{rows}x{d} bf16{' graph' if graph else ''}", setup)


KERNELS = (
    KernelEntry("silu_and_mul", _specializations,
                lambda: [_bench(16384, 14336), _bench(32768, 14336), _bench(4096, 4096),
                         _bench(4096, 4096, graph=True)],
                "SwiGLU gate: silu(x[..., :d]) * x[..., d:]"),
)
