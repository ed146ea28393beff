"""Per-token FP8 quantization (the activation half of PTPC-FP8): kernel, launcher, reference.

For each row: ``scale = max(amax(|x|), AMAX_FLOOR) / FP8_MAX`` (fp32) and
``q = clamp(x / scale, -FP8_MAX, FP8_MAX)`` in the target's FP8 e4m3 flavour, so
``x ~= q * scale``. The flavour follows the arch (``Target.fp8_dtype``): e4m3fnuz
(max 240) on gfx942, e4m3fn (max 448) on gfx950, gfx12 and NVIDIA; gfx90a has no FP8.
Rows longer than the single-tile limit take two passes (amax, then quantize).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from rocstack_kernels.checks import FLOAT_DTYPES, check_same_device, check_shape, check_tensor
from rocstack_kernels.configs import config_for, launch_options, warps_for_block
from rocstack_kernels.launch import next_power_of_2
from rocstack_kernels.registry import BenchCase, BenchSetup, KernelEntry, Specialization, Unsupported
from rocstack_kernels.target import Target, target_of

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)
# Keeps an all-zero row's scale positive, so dequantization never divides by zero.
AMAX_FLOOR = 1e-12


def fp8_max(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max)


@triton.jit
def _quant_kernel(x_ptr, q_ptr, scale_ptr, stride_x, stride_q, n_cols, fp8_max_value, amax_floor,
                  BLOCK: tl.constexpr, SINGLE_TILE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    q_row = q_ptr + row * stride_q
    if SINGLE_TILE:
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        scale = tl.maximum(tl.max(tl.abs(x), axis=0), amax_floor) / fp8_max_value
        q = tl.clamp(x / scale, -fp8_max_value, fp8_max_value)
        tl.store(q_row + cols, q.to(q_ptr.dtype.element_ty), mask=mask)
    else:
        amax = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            x = tl.load(x_row + cols, mask=cols < n_cols, other=0.0, eviction_policy="evict_last")
            amax = tl.maximum(amax, tl.abs(x.to(tl.float32)))
        scale = tl.maximum(tl.max(amax, axis=0), amax_floor) / fp8_max_value
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_first").to(tl.float32)
            q = tl.clamp(x / scale, -fp8_max_value, fp8_max_value)
            tl.store(q_row + cols, q.to(q_ptr.dtype.element_ty), mask=mask)
    tl.store(scale_ptr + row, scale)


@functools.lru_cache(maxsize=1024)
def _plan(target: Target, n_cols: int) -> tuple[dict, dict]:
    """Constexprs and options of one launch (cached: callers must not modify them)."""
    config = config_for("quantize_fp8_per_token", target)
    full = next_power_of_2(n_cols)
    if full <= config["single_tile_max"]:
        return {"BLOCK": full, "SINGLE_TILE": True}, launch_options(config, target, warps_for_block(config, full))
    return ({"BLOCK": config["tile"], "SINGLE_TILE": False},
            launch_options(config, target, config["tiled_warps"]))


def resolve_fp8_dtype(device: torch.device, fp8_dtype: torch.dtype | None) -> torch.dtype:
    """The FP8 dtype to use on ``device``: the arch's own, or a requested one it supports."""
    target = target_of(device)
    native = target.fp8_dtype()
    if native is None:
        raise ValueError(f"FP8 is not available on this GPU: {target.fp8_unsupported_reason()}")
    if fp8_dtype is None:
        return native
    if fp8_dtype not in FP8_DTYPES:
        raise ValueError(f"fp8_dtype must be torch.float8_e4m3fn or torch.float8_e4m3fnuz, got {fp8_dtype}")
    if target.backend != "interpreter" and fp8_dtype != native:
        raise ValueError(f"fp8_dtype {fp8_dtype} is not the FP8 flavour of {target.arch} ({native}); "
                         f"pass fp8_dtype=None to use the arch's own")
    return fp8_dtype


def quantize_fp8_per_token(x: torch.Tensor, fp8_dtype: torch.dtype | None = None,
                           out: torch.Tensor | None = None,
                           scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize each row of 2-D ``x`` to FP8; returns ``(q [M, K], scale [M, 1] fp32)``."""
    check_tensor("x", x, dtypes=FLOAT_DTYPES, ndim=2, last_dim_contiguous=True)
    check_same_device(x=x, out=out, scale=scale)
    dtype = resolve_fp8_dtype(x.device, fp8_dtype)
    rows, cols = x.shape
    if out is None:
        out = torch.empty((rows, cols), dtype=dtype, device=x.device)
    else:
        check_tensor("out", out, dtypes=(dtype,), contiguous=True)
        check_shape("out", out, (rows, cols), "same as x")
    if scale is None:
        scale = torch.empty((rows, 1), dtype=torch.float32, device=x.device)
    else:
        check_tensor("scale", scale, dtypes=(torch.float32,), contiguous=True)
        check_shape("scale", scale, (rows, 1), "one scale per row of x")
    if rows == 0:
        return out, scale
    if cols == 0:
        raise ValueError("x has no columns; a per-token scale needs at least one value per row")
    constexprs, options = _plan(target_of(x.device), cols)
    _quant_kernel[(rows,)](x, out, scale, x.stride(0), out.stride(0), cols, fp8_max(dtype), AMAX_FLOOR,
                           **constexprs, **options)
    return out, scale


def quantize_fp8_per_token_torch(x: torch.Tensor, fp8_dtype: torch.dtype, compute_dtype=torch.float32):
    """The same in torch: ``(q, scale)``; float64 compute gives the reference."""
    xc = x.to(compute_dtype)
    limit = fp8_max(fp8_dtype)
    scale = xc.abs().amax(dim=-1, keepdim=True).clamp(min=AMAX_FLOOR) / limit
    q = (xc / scale).clamp(-limit, limit).to(fp8_dtype)
    return q, scale.to(torch.float32)


AOT_DTYPES = (torch.bfloat16, torch.float16)
AOT_HIDDEN = (1024, 2048, 4096, 8192, 16384, 65536)


def _specializations(target: Target) -> list[Specialization] | Unsupported:
    fp8 = target.fp8_dtype()
    if fp8 is None:
        return Unsupported(target.fp8_unsupported_reason())
    specs, seen = [], set()
    for dtype in AOT_DTYPES:
        for hidden in AOT_HIDDEN:
            constexprs, options = _plan(target, hidden)
            if (dtype, constexprs["BLOCK"], constexprs["SINGLE_TILE"]) in seen:
                continue
            seen.add((dtype, constexprs["BLOCK"], constexprs["SINGLE_TILE"]))
            args = {"x_ptr": dtype, "q_ptr": fp8, "scale_ptr": torch.float32, "stride_x": hidden,
                    "stride_q": hidden, "n_cols": hidden, "fp8_max_value": 448.0, "amax_floor": AMAX_FLOOR,
                    **constexprs}
            label = f"{str(dtype)[6:]}->{str(fp8)[6:]} block={constexprs['BLOCK']}"
            specs.append(Specialization(_quant_kernel, label + ("" if constexprs["SINGLE_TILE"] else " tiled"),
                                        args, options))
    return specs


@functools.cache
def _compiled():
    return torch.compile(quantize_fp8_per_token_torch, dynamic=False)


def _bench(rows: int, cols: int) -> BenchCase:
    def setup(device) -> BenchSetup:
        x = torch.randn(rows, cols, device=device, dtype=torch.bfloat16)
        fp8 = resolve_fp8_dtype(device, None)
        moved = rows * cols * (x.element_size() + 1) + rows * 4
        return BenchSetup(run=lambda: quantize_fp8_per_token(x), ceiling="copy", bytes_moved=moved,
                          peers={"torch eager": lambda: quantize_fp8_per_token_torch(x, fp8),
                                 "torch.compile": lambda: _compiled()(x, fp8)})
    return BenchCase(f"{rows}x{cols} bf16", setup)


KERNELS = (
    KernelEntry("quantize_fp8_per_token", _specializations,
                lambda: [_bench(16384, 8192), _bench(32768, 8192), _bench(8192, 28672)],
                "per-row FP8 quantization with fp32 scales"),
)
