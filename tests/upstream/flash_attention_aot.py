"""Compile flash-attention's Triton AMD forward kernel ahead of time, for given gfx arches, on a CPU.

Run in a fresh interpreter with the flash_attn wheel importable and
FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE. The real host function
(``attention_prefill_forward_triton_impl``) is called on CPU tensors with the launch of
``attn_fwd`` intercepted, so the argument list is exactly the one flash-attention
builds for that shape; the kernel is then compiled for each target through
rocstack_kernels' AOT binder (Triton's own, with the target's backend). Prints one JSON
line per target: status, compile seconds, code-object resources.

What AOT can cover here: attn_fwd takes the sequence lengths, head counts and head
dimension as ``tl.constexpr`` (MAX_SEQLENS_Q/K, HQ, HK, ACTUAL_BLOCK_DMODEL), so every
run-time shape is a separate compile. Ahead of time one can prove the kernel compiles
for every image arch and prebuild chosen shapes, not every shape a user will run.

    python flash_attention_aot.py --arch gfx90a,gfx942 --shape 2,1024,16,128 [--causal]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def capture_launch(batch: int, seqlen: int, heads: int, headdim: int, causal: bool):
    """(jit function, argument mapping, options) of the attn_fwd launch flash-attention makes."""
    import torch
    from flash_attn.flash_attn_triton_amd import fwd_prefill

    captured: dict = {}

    class Recorder:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                captured["args"], captured["kwargs"] = args, kwargs
            return launch

    autotuner = fwd_prefill.attn_fwd
    fwd_prefill.attn_fwd = Recorder()
    try:
        q, k, v = (torch.empty(batch, seqlen, heads, headdim, dtype=torch.bfloat16) for _ in range(3))
        out = torch.empty_like(q)
        fwd_prefill.attention_prefill_forward_triton_impl(
            q, k, v, out, headdim ** -0.5, None, causal, None, "bshd", None, None, seqlen, seqlen,
            None, None, 0.0, None, None, False, True, None, None, None, None)
    finally:
        fwd_prefill.attn_fwd = autotuner
    fn = autotuner.fn
    args = dict(zip(fn.arg_names, captured["args"]))
    args.update(captured["kwargs"])
    config = autotuner.configs[0]  # with autotuning off (the default) flash-attention has exactly one
    args.update(config.kwargs)
    args = {name: (value.dtype if isinstance(value, torch.Tensor) else value) for name, value in args.items()}
    return fn, args, {"num_warps": config.num_warps, "num_stages": config.num_stages}


def compile_for(arches: str, shape: tuple[int, int, int, int], causal: bool) -> list[dict]:
    from rocstack_kernels.aot import compile_specialization
    from rocstack_kernels.registry import Specialization
    from rocstack_kernels.resources import decode
    from rocstack_kernels.target import parse_targets

    fn, args, options = capture_launch(*shape, causal=causal)
    label = f"bf16 b{shape[0]} s{shape[1]} h{shape[2]} d{shape[3]}{' causal' if causal else ''}"
    rows = []
    for target in parse_targets(arches):
        started = time.perf_counter()
        try:
            kernel, _signature, _constexprs = compile_specialization(Specialization(fn, label, args, options), target)
        except Exception as exc:  # a compiler failure is the result for that arch
            rows.append({"arch": target.arch, "status": "failed", "error": f"{type(exc).__name__}: {str(exc)[-300:]}"})
            continue
        blob = kernel.asm["hsaco"]
        rows.append({"arch": target.arch, "status": "built", "label": label,
                     "compile_s": round(time.perf_counter() - started, 2), "hsaco_bytes": len(blob),
                     "resources": decode("hsaco", blob, int(kernel.metadata.shared))})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AOT-compile flash-attention's Triton AMD forward kernel")
    parser.add_argument("--arch", required=True, help="comma list of gfx arches")
    parser.add_argument("--shape", default="2,1024,16,128", help="batch,seqlen,heads,headdim")
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args(argv)
    shape = tuple(int(x) for x in args.shape.split(","))
    rows = compile_for(args.arch, shape, args.causal)
    for row in rows:
        print(json.dumps(row))
    return 0 if all(r["status"] == "built" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
