"""FP8 row-wise GEMM with A, B and the output moved by TMA (NVIDIA sm90+).

Same math as ``fp8_gemm._fp8_gemm_kernel`` (fp32 accumulation, row and column
scales and bias on the accumulator tile, one cast); what differs is how tiles
move: host-built tensor descriptors, so the copy engine fills shared memory and
zero-fills the K tail and the M/N edges (no masks, no pointer arithmetic in the
loop), and the store is clipped at the matrix edge by the copy engine too.
``PERSISTENT``: one program per SM walks the output tiles (grouped order, as the
pointer kernel); with ``FLATTEN`` Triton's pipeliner flattens the tile and K
loops into one, so the next tile's first loads are in flight during this tile's
epilogue. AMD has no TMA: it keeps the pointer kernel.

Layout the descriptors need (``describable``): ``a`` [M, K] row-major, ``b`` the
transpose of a row-major [N, K] weight (FP8 wgmma reads both operands K-major),
the output row-major in a 16-bit dtype, every row 16-byte aligned.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # triton < 3.4: the pointer kernel serves
    TensorDescriptor = None

from rocstack_kernels.launch import SpecializedLauncher, cdiv
from rocstack_kernels.target import Target


@triton.jit
def _tile_of(tile, num_pid_m, num_pid_n, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of output tile ``tile`` in grouped order (GROUP_M row-tiles share B in L2)."""
    group_size = GROUP_M * num_pid_n
    first_m = (tile // group_size) * GROUP_M
    rows_in_group = min(num_pid_m - first_m, GROUP_M)
    return first_m + ((tile % group_size) % rows_in_group), (tile % group_size) // rows_in_group


@triton.jit
def _scaled_store(acc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, off_m, off_n, M, N,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HAS_BIAS: tl.constexpr):
    offs_m = off_m + tl.arange(0, BLOCK_M)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    scale_a = tl.load(scale_a_ptr + offs_m, mask=offs_m < M, other=0.0)
    scale_b = tl.load(scale_b_ptr + offs_n, mask=offs_n < N, other=0.0)
    acc = acc * scale_a[:, None] * scale_b[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)[None, :]
    c_desc.store([off_m, off_n], acc.to(c_desc.dtype))


@triton.jit
def _gemm_tile(a_desc, b_desc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, tile, num_pid_m, num_pid_n, k_tiles,
               M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
               GROUP_M: tl.constexpr, HAS_BIAS: tl.constexpr):
    """One output tile: the K loop over descriptor loads, then the scaled store."""
    pid_m, pid_n = _tile_of(tile, num_pid_m, num_pid_n, GROUP_M)
    off_m = pid_m * BLOCK_M
    off_n = pid_n * BLOCK_N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for ki in range(k_tiles):
        a = a_desc.load([off_m, ki * BLOCK_K])
        b = b_desc.load([off_n, ki * BLOCK_K])
        acc = tl.dot(a, b.T, acc)
    _scaled_store(acc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, off_m, off_n, M, N, BLOCK_M, BLOCK_N, HAS_BIAS)


@triton.jit(do_not_specialize=["M"])
def fp8_gemm_tma_kernel(a_desc, b_desc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, M, N, K,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                        GROUP_M: tl.constexpr, HAS_BIAS: tl.constexpr, PERSISTENT: tl.constexpr,
                        FLATTEN: tl.constexpr):
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    k_tiles = tl.cdiv(K, BLOCK_K)
    if PERSISTENT:
        for tile in tl.range(tl.program_id(0), num_pid_m * num_pid_n, tl.num_programs(0), flatten=FLATTEN):
            _gemm_tile(a_desc, b_desc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, tile, num_pid_m, num_pid_n,
                       k_tiles, M, N, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, HAS_BIAS)
    else:
        _gemm_tile(a_desc, b_desc, c_desc, scale_a_ptr, scale_b_ptr, bias_ptr, tl.program_id(0), num_pid_m,
                   num_pid_n, k_tiles, M, N, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, HAS_BIAS)


def has_tma(target: Target) -> bool:
    """Whether ``target`` runs the TMA kernel (sm90+; the CPU interpreter emulates it)."""
    if TensorDescriptor is None:
        return False
    return target.backend == "interpreter" or (target.backend == "cuda" and int(target.arch[2:]) >= 90)


def describable(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether a, b (the transpose of a row-major [N, K]) and a 16-bit out fit TMA descriptors.

    A float32 output takes the pointer kernel: its epilogue tile (128 x 256 x 4 bytes)
    beside three stages of A/B would need 273 KiB of shared memory (H200 limit: 227 KiB).
    """
    def rows_ok(t: torch.Tensor) -> bool:
        return t.stride(1) == 1 and (t.stride(0) * t.element_size()) % 16 == 0 and t.data_ptr() % 16 == 0
    return out.element_size() == 2 and rows_ok(a) and rows_ok(b.t()) and rows_ok(out)


_launcher = SpecializedLauncher(fp8_gemm_tma_kernel)


def launch(a, b, out, scale_a, scale_b, bias, constexprs: dict, options: dict, num_sms: int) -> None:
    """Run the TMA kernel with ``constexprs`` (BLOCK_*, GROUP_M, HAS_BIAS, PERSISTENT, FLATTEN)."""
    m, k = a.shape
    n = b.shape[1]
    block_m, block_n, block_k = constexprs["BLOCK_M"], constexprs["BLOCK_N"], constexprs["BLOCK_K"]
    bias_arg = bias if bias is not None else scale_b
    args = {"a_desc": TensorDescriptor.from_tensor(a, [block_m, block_k]),
            "b_desc": TensorDescriptor.from_tensor(b.t(), [block_n, block_k]),
            "c_desc": TensorDescriptor.from_tensor(out, [block_m, block_n]),
            "scale_a_ptr": scale_a, "scale_b_ptr": scale_b, "bias_ptr": bias_arg, "M": m, "N": n, "K": k,
            **constexprs}
    tiles = cdiv(m, block_m) * cdiv(n, block_n)
    grid = (min(num_sms, tiles),) if constexprs["PERSISTENT"] else (tiles,)
    # Everything Triton specializes this launch on: dtypes, pointer alignment, N and K
    # (divisibility by 16, == 1; M is not specialized), constexprs, options, device.
    key = (a.dtype, out.dtype, bias_arg.dtype, a.device,
           tuple(t.data_ptr() % 16 == 0 for t in (scale_a, scale_b, bias_arg)),
           n % 16 == 0, n == 1, k % 16 == 0, k == 1,
           tuple(constexprs.items()), tuple(sorted(options.items())))
    _launcher(key, grid, args, options)
