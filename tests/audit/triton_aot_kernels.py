"""Triton kernels compiled ahead of time for AMD targets by the audit tests (no GPU needed)."""

from __future__ import annotations

import os
import subprocess
import sys

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
    """HSACO bytes of ``kernel`` for ``arch``.

    In a pytest run that also collects kernels/tests, TRITON_INTERPRET=1 is set
    process-wide before triton.jit runs, and interpreted functions cannot be
    compiled: then compile in a clean child process.
    """
    if os.environ.get("TRITON_INTERPRET"):
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        child = subprocess.run([sys.executable, __file__, kernel, arch], env=env, capture_output=True, timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"AOT compile of {kernel} for {arch} failed: {child.stderr.decode()[-2000:]}")
        return child.stdout
    return _compile(kernel, arch)


def _compile(kernel: str, arch: str) -> bytes:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if kernel == "vector_add":
        source = ASTSource(vector_add, {"x": "*fp32", "y": "*fp32", "out": "*fp32", "n": "i32"}, {"BLOCK": 1024})
    else:
        source = ASTSource(matmul_tile, {"a": "*fp16", "b": "*fp16", "c": "*fp32", "K": "i32"},
                           {"BM": 128, "BN": 128, "BK": 64})
    return triton.compile(source, target=GPUTarget("hip", arch, 64)).asm["hsaco"]


if __name__ == "__main__":
    sys.stdout.buffer.write(_compile(sys.argv[1], sys.argv[2]))
