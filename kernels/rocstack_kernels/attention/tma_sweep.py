"""Device sweep: TMA kernel configs vs the pointer kernel vs SDPA, prefill hd128 bf16, B*S = 16k.

``python -m rocstack_kernels.attention.tma_sweep [--json FILE]``; prints one line per
(shape, variant) with TFLOP/s, ratio to SDPA measured in the same run, and the
relative error against SDPA's output (upcast to float64).
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
import triton.testing

from rocstack_kernels.attention.flash_attention import attention_flops, flash_attention
from rocstack_kernels.testing import rel_err

VARIANTS = {
    "ptr-default": {"TMA": False},
    "tma 128x128 w8 s3": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3},
    "tma 128x128 w8 s2": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 2},
    "tma 128x64 w8 s3": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3},
    "tma 64x128 w4 s3": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 128, "num_warps": 4, "num_stages": 3},
    "tma 64x64 w4 s3": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
    "tma 64x64 w4 s2": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    "tma 64x64 w4 s4": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 4},
    "tma 64x32 w4 s3": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 3},
    "tma 64x32 w4 s4": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 4},
    "tma 64x128 w4 s2": {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 128, "num_warps": 4, "num_stages": 2},
    "tma 128x32 w4 s3": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 32, "num_warps": 4, "num_stages": 3},
    "tma 128x64 w4 s2": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    "tma 128x64 w4 s3": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
}
SHAPES = [(64, 256, 16), (32, 512, 16), (16, 1024, 16), (8, 2048, 16), (4, 4096, 16), (2, 8192, 16),
          (1, 16384, 16), (4, 4096, 32), (1, 16384, 32)]


def _ms(fn) -> float:
    return float(triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--variants", help="comma list of variant names (default: all)")
    parser.add_argument("--max-seqlen", type=int, default=1 << 30, help="only shapes up to this sequence length")
    args = parser.parse_args(argv)
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    rows = []
    for batch, seqlen, heads in [shape for shape in SHAPES if shape[1] <= args.max_seqlen]:
        q, k, v = (torch.randn(batch, seqlen, heads, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        out = torch.empty_like(q)
        for causal in (False, True):
            flops = attention_flops(batch, heads, seqlen, seqlen, 128, causal)
            ref = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal).transpose(1, 2)
            sdpa = flops / _ms(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)) / 1e9
            for name in names:
                cfg = VARIANTS[name]
                row = {"shape": f"B{batch} S{seqlen} H{heads} {'causal' if causal else 'full'}", "variant": name,
                       "sdpa": sdpa}
                try:
                    out.fill_(float("nan"))
                    flash_attention(q, k, v, causal, out=out, config=cfg)
                    row["err"] = rel_err(out, ref)
                    row["tflops"] = flops / _ms(lambda c=cfg: flash_attention(q, k, v, causal, out=out, config=c)) / 1e9
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:100]}"
                rows.append(row)
                if "error" in row:
                    print(f"{row['shape']:<24} {name:<20} error {row['error']}", flush=True)
                else:
                    print(f"{row['shape']:<24} {name:<20} {row['tflops']:5.0f} TF  {row['tflops'] / sdpa:.2f}x "
                          f"sdpa({sdpa:.0f})  err {row['err']:.1e}", flush=True)
        del q, k, v, qt, kt, vt, out
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
