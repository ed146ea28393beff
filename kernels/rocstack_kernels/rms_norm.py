"""RMSNorm and fused residual-add + RMSNorm: Triton kernel, launchers, torch reference.

``out = x / sqrt(mean(x^2) + eps) * weight`` per row, in fp32, rounded once to the
input dtype. ``add_rms_norm`` first forms ``residual = x + residual`` (stored back into
``residual`` in place, in its dtype, as serving engines do) and normalizes that stored
sum, so ``add_rms_norm(x, r, w)`` equals ``rms_norm(x + r, w)`` exactly.

Rows up to ``single_tile_max`` elements are held in registers in one tile. Longer rows
(up to 65536 and beyond) are tiled: a first pass accumulates the sum of squares tile
by tile (keeping the row in L2), a second pass normalizes - so the register use does
not grow with the hidden size and nothing spills.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from rocstack_kernels.checks import FLOAT_DTYPES, check_same_device, check_shape, check_tensor
from rocstack_kernels.configs import (
    config_for,
    known_keys,
    launch_options,
    override_from_key,
    override_key,
    warps_for_block,
    with_override,
)
from rocstack_kernels.launch import cdiv, next_power_of_2
from rocstack_kernels.registry import BenchCase, BenchSetup, KernelEntry, Specialization
from rocstack_kernels.target import Target, target_of


@triton.jit
def _rms_norm_rows(x_ptr, res_ptr, w_ptr, out_ptr, stride_x, stride_res, stride_out, n_rows, n_cols, eps,
                   BLOCK: tl.constexpr, ROWS: tl.constexpr, HAS_RESIDUAL: tl.constexpr):
    """ROWS short rows per program: one [ROWS, BLOCK] tile, so small hidden sizes keep enough bytes in flight."""
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < n_cols
    mask = (rows < n_rows)[:, None] & col_mask[None, :]
    # Every load first (the weight's latency hides behind the reduction), every store last.
    w = tl.load(w_ptr + cols, mask=col_mask, other=0.0, eviction_policy="evict_last").to(tl.float32)
    x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        res_ptrs = res_ptr + rows[:, None] * stride_res + cols[None, :]
        total = (x + tl.load(res_ptrs, mask=mask, other=0.0).to(tl.float32)).to(res_ptr.dtype.element_ty)
        x = total.to(tl.float32)
    rrms = tl.rsqrt(tl.sum(x * x, axis=1) / n_cols + eps)
    y = x * rrms[:, None] * w[None, :]
    if HAS_RESIDUAL:
        tl.store(res_ptrs, total, mask=mask)
    tl.store(out_ptr + rows[:, None] * stride_out + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["n_rows"])
def _rms_norm_kernel(x_ptr, res_ptr, w_ptr, out_ptr, stride_x, stride_res, stride_out, n_rows, n_cols, eps,
                     BLOCK: tl.constexpr, SINGLE_TILE: tl.constexpr, ROWS: tl.constexpr,
                     HAS_RESIDUAL: tl.constexpr, STREAM_OUT: tl.constexpr = False,
                     BF16_BITS: tl.constexpr = False):
    if ROWS > 1:
        _rms_norm_rows(x_ptr, res_ptr, w_ptr, out_ptr, stride_x, stride_res, stride_out, n_rows, n_cols, eps,
                       BLOCK, ROWS, HAS_RESIDUAL)
        return
    row = tl.program_id(0).to(tl.int64)  # int64: rows * stride passes 2**31 at 32768 x 65536
    x_row = x_ptr + row * stride_x
    res_row = res_ptr + row * stride_res
    out_row = out_ptr + row * stride_out
    if SINGLE_TILE:
        cols = tl.arange(0, BLOCK)
        mask = cols < n_cols
        if not BF16_BITS:
            w = tl.load(w_ptr + cols, mask=mask, other=0.0, eviction_policy="evict_last").to(tl.float32)
        x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_first" if BF16_BITS else "")
        if HAS_RESIDUAL:
            x = (x.to(tl.float32) + tl.load(res_row + cols, mask=mask, other=0.0).to(tl.float32)).to(
                res_ptr.dtype.element_ty)
            tl.store(res_row + cols, x, mask=mask)
        xf = x.to(tl.float32)
        rrms = tl.rsqrt(tl.sum(xf * xf, axis=0) / n_cols + eps)
        if BF16_BITS:
            # A bf16 row too long for registers as float32 (65536 over 1024 threads) stays
            # there as its 16-bit patterns; float32 is made again from the bits (bf16 is the
            # top half of a float32), a chain the compiler cannot merge with the first
            # conversion, so no float32 copy of the row lives across the reduction. One pass
            # over HBM instead of the tiled path's two (the second from L2). The weight
            # loads after the reduction for the same reason.
            xf = (x.to(tl.int16, bitcast=True).to(tl.int32) << 16).to(tl.float32, bitcast=True)
            w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(out_row + cols, (xf * rrms * w).to(out_ptr.dtype.element_ty), mask=mask)
    else:
        squares = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            # evict_last: the second pass re-reads this row, keep it in L2.
            x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_last").to(tl.float32)
            if HAS_RESIDUAL:
                r = tl.load(res_row + cols, mask=mask, other=0.0).to(tl.float32)
                total = (x + r).to(res_ptr.dtype.element_ty)
                tl.store(res_row + cols, total, mask=mask)
                x = total.to(tl.float32)
            squares += x * x
        rrms = tl.rsqrt(tl.sum(squares, axis=0) / n_cols + eps)
        # The residual pass wrote the sums; make them visible to every thread of the program.
        tl.debug_barrier()
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            if HAS_RESIDUAL:
                x = tl.load(res_row + cols, mask=mask, other=0.0, eviction_policy="evict_first").to(tl.float32)
            else:
                x = tl.load(x_row + cols, mask=mask, other=0.0, eviction_policy="evict_first").to(tl.float32)
            # No evict_last on the weight here: at 65536 it displaced the rows the second
            # pass re-reads (measured 2587 -> 2440 GB/s on the H100).
            w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
            y = (x * rrms * w).to(out_ptr.dtype.element_ty)
            if STREAM_OUT:
                # The output is not read again here: mark it first out of L2, so the
                # rows the second pass of other programs re-read stay there.
                tl.store(out_row + cols, y, mask=mask, eviction_policy="evict_first")
            else:
                tl.store(out_row + cols, y, mask=mask)


def _plan(kernel: str, target: Target, n_cols: int, dtype: torch.dtype,
          override: dict | None = None) -> tuple[dict, dict]:
    """Constexprs and compiler options for one launch; shared by launcher and AOT list.

    ``override`` replaces keys of the arch's config (for sweeps): ``rows_by_block``,
    ``warps_by_block``, ``single_tile_max``, ``bf16_tile_max``, ``tile``, ``tiled_warps``,
    ``stream_out``, ... Cached (the launcher runs it on every call); callers must not modify
    the dicts.
    """
    return _cached_plan(kernel, target, n_cols, dtype == torch.bfloat16, override_key(override))


@functools.lru_cache(maxsize=1024)
def _cached_plan(kernel: str, target: Target, n_cols: int, bf16: bool, override: str | None) -> tuple[dict, dict]:
    config = with_override(config_for(kernel, target), override_from_key(override), known_keys(kernel), kernel)
    full = next_power_of_2(n_cols)
    # bf16 rows up to bf16_tile_max stay in registers as 16-bit patterns (BF16_BITS).
    bits = bf16 and config["single_tile_max"] < full <= config["bf16_tile_max"]
    if full <= config["single_tile_max"] or bits:
        rows = next((r for limit, r in config.get("rows_by_block", []) if full <= limit), 1)
        constexprs = {"BLOCK": full, "SINGLE_TILE": True, "ROWS": 1 if bits else rows, "STREAM_OUT": False,
                      "BF16_BITS": bits}
        options = launch_options(config, target, warps_for_block(config, full))
    else:
        constexprs = {"BLOCK": config["tile"], "SINGLE_TILE": False, "ROWS": 1,
                      "STREAM_OUT": bool(config.get("stream_out", False)), "BF16_BITS": False}
        options = launch_options(config, target, config["tiled_warps"])
    return constexprs, options


def _rows(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A 2-D [rows, hidden] view: any 2-D tensor with a contiguous last dim, or contiguous N-D."""
    if tensor.dim() == 2 and (tensor.stride(-1) == 1 or tensor.shape[-1] == 1):
        return tensor
    if tensor.dim() >= 1 and tensor.is_contiguous():
        return tensor.reshape(-1, tensor.shape[-1])
    raise ValueError(f"{name} must be 2-D with a contiguous last dimension or contiguous N-D; "
                     f"got shape {tuple(tensor.shape)} strides {tuple(tensor.stride())}")


def _check(x, weight, eps, residual=None):
    check_tensor("x", x, dtypes=FLOAT_DTYPES)
    check_tensor("weight", weight, dtypes=(x.dtype,), ndim=1, contiguous=True)
    if x.dim() == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have a non-empty last (hidden) dimension, got shape {tuple(x.shape)}")
    check_shape("weight", weight, (x.shape[-1],), "the hidden size of x")
    if residual is not None:
        check_tensor("residual", residual, dtypes=(x.dtype,))
        check_shape("residual", residual, tuple(x.shape), "same as x")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    check_same_device(x=x, weight=weight, residual=residual)


def _launch(kernel: str, x2, res2, weight, out2, eps: float, has_residual: bool, config: dict | None) -> None:
    n_rows, n_cols = x2.shape
    if n_rows == 0:
        return
    constexprs, options = _plan(kernel, target_of(x2.device), n_cols, x2.dtype, config)
    grid = (cdiv(n_rows, constexprs["ROWS"]),)
    _rms_norm_kernel[grid](x2, res2, weight, out2, x2.stride(0), res2.stride(0), out2.stride(0),
                           n_rows, n_cols, float(eps), HAS_RESIDUAL=has_residual, **constexprs, **options)


def _output(x: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
    if out is None:
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)
    check_tensor("out", out, dtypes=(x.dtype,), contiguous=True)
    check_shape("out", out, tuple(x.shape), "same as x")
    check_same_device(x=x, out=out)
    return out


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
             out: torch.Tensor | None = None, config: dict | None = None) -> torch.Tensor:
    """RMSNorm over the last dimension into ``out`` (allocated when None), which is returned.

    ``config`` overrides keys of the per-arch launch config; it exists for tuning sweeps.
    """
    _check(x, weight, eps)
    x2 = _rows("x", x)
    out = _output(x, out)
    _launch("rms_norm", x2, x2, weight, out.view(-1, x.shape[-1]), eps, False, config)
    return out


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6,
                 out: torch.Tensor | None = None, config: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``residual += x`` in place, then RMSNorm of it; returns ``(out, residual)``. ``config``: as rms_norm."""
    _check(x, weight, eps, residual)
    x2 = _rows("x", x)
    res2 = _rows("residual", residual)  # a view, so the kernel's stores land in residual
    out = _output(x, out)
    _launch("add_rms_norm", x2, res2, weight, out.view(-1, x.shape[-1]), eps, True, config)
    return out, residual


# --- torch versions: the float64 reference and the eager / torch.compile peers ------------

def rms_norm_torch(x, weight, eps=1e-6, compute_dtype=torch.float32):
    """RMSNorm in torch; with float64 inputs and compute_dtype it is the reference."""
    xc = x.to(compute_dtype)
    y = xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight.to(compute_dtype)
    return y.to(x.dtype)


def add_rms_norm_torch(x, residual, weight, eps=1e-6, compute_dtype=torch.float32):
    """Out-of-place residual add + RMSNorm in torch; returns ``(out, new_residual)``."""
    total = (x.to(compute_dtype) + residual.to(compute_dtype)).to(residual.dtype)
    return rms_norm_torch(total, weight, eps, compute_dtype), total


# --- registry: AOT specializations and bench cases ---------------------------------------

# Hidden-size buckets shipped prebuilt: single-tile powers of two, and one tiled variant
# (any hidden size above the single-tile limit uses the same tiled kernel).
AOT_HIDDEN = (256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
AOT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def _specializations(kernel: str, target: Target) -> list[Specialization]:
    specs, seen = [], set()
    for dtype in AOT_DTYPES:
        for hidden in AOT_HIDDEN:
            constexprs, options = _plan(kernel, target, hidden, dtype)
            key = (dtype, tuple(constexprs.items()))
            if key in seen:
                continue
            seen.add(key)
            args = {"x_ptr": dtype, "res_ptr": dtype, "w_ptr": dtype, "out_ptr": dtype,
                    "stride_x": hidden, "stride_res": hidden, "stride_out": hidden, "n_rows": 4096, "n_cols": hidden,
                    "eps": 1e-6, "HAS_RESIDUAL": kernel == "add_rms_norm", **constexprs}
            label = (f"{str(dtype)[6:]} block={constexprs['BLOCK']}{'' if constexprs['SINGLE_TILE'] else ' tiled'}"
                     f"{' bits' if constexprs['BF16_BITS'] else ''}"
                     f"{'' if constexprs['ROWS'] == 1 else ' rows=%d' % constexprs['ROWS']}")
            specs.append(Specialization(_rms_norm_kernel, label, args, options))
    return specs


BENCH_SHAPES = ((32768, 1024), (32768, 4096), (32768, 8192), (32768, 16384), (32768, 65536))


@functools.cache
def _compiled(fn):
    return torch.compile(fn, dynamic=False)


def _bench_rms(rows: int, hidden: int, with_residual: bool, graph: bool = False):
    """Eager (each call with its launch), or with ``graph`` every implementation replayed
    from a CUDA graph: the GPU's time alone (``graph_replay``)."""
    def setup(device) -> BenchSetup:
        from rocstack_kernels.graph_replay import GraphReplay

        wrap = GraphReplay if graph else (lambda fn: fn)
        x = torch.randn(rows, hidden, device=device, dtype=torch.bfloat16)
        w = torch.randn(hidden, device=device, dtype=torch.bfloat16)
        elt = x.element_size()
        if not with_residual:
            return BenchSetup(run=wrap(lambda: rms_norm(x, w)), ceiling="copy", bytes_moved=2 * x.numel() * elt,
                              peers={"torch eager": wrap(lambda: rms_norm_torch(x, w)),
                                     "torch.compile": wrap(lambda: _compiled(rms_norm_torch)(x, w))},
                              variant=lambda config: wrap(lambda: rms_norm(x, w, config=config)))
        r = torch.randn_like(x)
        return BenchSetup(run=wrap(lambda: add_rms_norm(x, r, w)), ceiling="copy", bytes_moved=4 * x.numel() * elt,
                          peers={"torch eager": wrap(lambda: add_rms_norm_torch(x, r, w)),
                                 "torch.compile": wrap(lambda: _compiled(add_rms_norm_torch)(x, r, w))},
                          variant=lambda config: wrap(lambda: add_rms_norm(x, r, w, config=config)))
    return BenchCase(f"{rows}x{hidden} bf16{' graph' if graph else ''}", setup)


def _bench_cases(with_residual: bool) -> list[BenchCase]:
    # The shortest rows also replayed from graphs: eager, their ~40 us of launch is as
    # long as the kernel on the H200 machine's host.
    return [_bench_rms(m, n, with_residual) for m, n in BENCH_SHAPES] + [_bench_rms(32768, 1024, with_residual, True)]


KERNELS = (
    KernelEntry("rms_norm", lambda t: _specializations("rms_norm", t),
                lambda: _bench_cases(False),
                "RMSNorm over the last dim"),
    KernelEntry("add_rms_norm", lambda t: _specializations("add_rms_norm", t),
                lambda: _bench_cases(True),
                "residual += x, then RMSNorm (residual updated in place)"),
)
