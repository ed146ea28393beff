"""Triton kernels compiled ahead of time for AMD targets by the audit tests (no GPU needed)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def vector_add(x, y, out, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out + offs, tl.load(x + offs, mask=mask) + tl.load(y + offs, mask=mask), mask=mask)


@triton.jit
def matmul_tile(a, b, c, K, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rm = tl.arange(0, BM)
    rn = tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(0, K, BK):
        tile_a = tl.load(a + rm[:, None] * K + (k + rk)[None, :])
        tile_b = tl.load(b + (k + rk)[:, None] * BN + rn[None, :])
        acc += tl.dot(tile_a, tile_b)
    tl.store(c + rm[:, None] * BN + rn[None, :], acc)


def compile_hsaco(kernel: str, arch: str) -> bytes:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if kernel == "vector_add":
        source = ASTSource(vector_add, {"x": "*fp32", "y": "*fp32", "out": "*fp32", "n": "i32"}, {"BLOCK": 1024})
    else:
        source = ASTSource(matmul_tile, {"a": "*fp16", "b": "*fp16", "c": "*fp32", "K": "i32"},
                           {"BM": 128, "BN": 128, "BK": 64})
    return triton.compile(source, target=GPUTarget("hip", arch, 64)).asm["hsaco"]
