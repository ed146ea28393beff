"""Time alternative launch configs of one kernel on the GPU at hand, beside torch.compile.

Each variant overrides keys of the kernel's config at the exact-arch level (what
data/configs.json would say for this arch), so the launcher runs it unchanged.
Used to choose the numbers in data/configs.json; prints one line per variant.

    python kernels/scripts/sweep_configs.py rms_norm 32768x65536 '{"tile": [4096, 8192], "tiled_warps": [16, 32]}'
"""

from __future__ import annotations

import functools
import itertools
import json
import sys

import torch


def _callables(kernel: str, shape: tuple[int, ...], device):
    import importlib

    import rocstack_kernels as rk

    # import_module: the package re-exports functions under the modules' names.
    rn = importlib.import_module("rocstack_kernels.rms_norm")
    sm = importlib.import_module("rocstack_kernels.silu_and_mul")

    rows, cols = shape
    x = torch.randn(rows, cols, device=device, dtype=torch.bfloat16)
    if kernel == "rms_norm":
        w = torch.randn(cols, device=device, dtype=torch.bfloat16)
        peer = torch.compile(rn.rms_norm_torch, dynamic=False)
        return (lambda: rk.rms_norm(x, w)), (lambda: peer(x, w)), 2 * x.numel() * 2
    if kernel == "add_rms_norm":
        w = torch.randn(cols, device=device, dtype=torch.bfloat16)
        r = torch.randn_like(x)
        peer = torch.compile(rn.add_rms_norm_torch, dynamic=False)
        return (lambda: rk.add_rms_norm(x, r, w)), (lambda: peer(x, r, w)), 4 * x.numel() * 2
    if kernel == "silu_and_mul":
        peer = torch.compile(functools.partial(sm.silu_and_mul_torch, compute_dtype=torch.bfloat16), dynamic=False)
        return (lambda: rk.silu_and_mul(x)), (lambda: peer(x)), 3 * x.numel()  # x is [rows, 2d]
    raise SystemExit(f"no sweep for {kernel}")


def main(argv: list[str]) -> int:
    import triton.testing

    from rocstack_kernels import configs
    from rocstack_kernels.target import target_of

    kernel, shape_text, grid_text = argv
    shape = tuple(int(v) for v in shape_text.split("x"))
    grid = json.loads(grid_text)
    device = torch.device("cuda")
    arch = target_of(device).arch
    ours, peer, moved = _callables(kernel, shape, device)
    bench = functools.partial(triton.testing.do_bench, warmup=25, rep=100, return_mode="median")
    peer_ms = bench(peer)
    print(f"{kernel} {shape_text}: torch.compile {moved / peer_ms / 1e6:.0f} GB/s")
    table = configs._table()[kernel]
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        table[arch] = dict(zip(keys, values))
        try:
            ms = bench(ours)
            print(f"  {table[arch]}: {moved / ms / 1e6:.0f} GB/s ({peer_ms / ms:.3f}x torch.compile)")
        except Exception as exc:  # a variant that does not compile is a result too
            print(f"  {table[arch]}: failed {type(exc).__name__}: {str(exc)[:100]}")
    table.pop(arch, None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
