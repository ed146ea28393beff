"""flash-attention forward TFLOP/s by shape, beside torch's SDPA in the same run.

The flash-attention recipes' perf floors (``flash_attn_fwd_bf16_hd128_tflops``) are read
from the JSON this writes: ``{"schema", "device", "backend", "metrics": {name: value},
"rows": [...]}``. Shapes follow flash-attention's own benchmark: 16k tokens per batch
(batch = 16384 / seqlen), 2048-wide model (heads = 2048 / headdim), FLOPs = 4*B*H*S^2*D,
halved for causal. Works with either backend: the CK extension, or the Triton AMD
backend when FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE (the image sets it).

    python recipes/benchmarks/flash_attention.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SCHEMA = "rocstack.flash-attention-bench/v1"
FLOOR_SEQLEN = 4096  # the shape the floors are written for (non-causal)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--seqlens", default="1024,2048,4096,8192", help="comma list of sequence lengths")
    parser.add_argument("--headdim", type=int, default=128)
    parser.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    return parser.parse_args(argv)


def _time_ms(fn) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def _row(seqlen: int, headdim: int, causal: bool, dtype, flash_attn_func, device) -> dict:
    import torch
    import torch.nn.functional as F

    batch, heads = max(1, 16384 // seqlen), 2048 // headdim
    q, k, v = (torch.randn(batch, seqlen, heads, headdim, device=device, dtype=dtype) for _ in range(3))
    flops = 4 * batch * heads * seqlen * seqlen * headdim // (2 if causal else 1)
    ours = _time_ms(lambda: flash_attn_func(q, k, v, causal=causal))
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # SDPA takes (B, H, S, D)
    peer = _time_ms(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal))
    return {"seqlen": seqlen, "batch": batch, "heads": heads, "headdim": headdim, "causal": causal,
            "flash_attn_tflops": flops / ours / 1e9, "sdpa_tflops": flops / peer / 1e9}


def _metric_names(row: dict, tag: str) -> tuple[str, str]:
    suffix = f"{tag}_hd{row['headdim']}_s{row['seqlen']}{'_causal' if row['causal'] else ''}_tflops"
    return f"flash_attn_fwd_{suffix}", f"sdpa_fwd_{suffix}"


def run(args: argparse.Namespace) -> dict:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("flash-attention benchmark: no GPU visible to torch (torch.cuda.is_available() is False)")
    from flash_attn import flash_attn_func

    device = torch.device("cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    rows = [_row(s, args.headdim, causal, dtype, flash_attn_func, device)
            for s in (int(x) for x in args.seqlens.split(",")) for causal in (False, True)]
    metrics = {}
    for row in rows:
        ours, peer = _metric_names(row, args.dtype)
        metrics[ours], metrics[peer] = row["flash_attn_tflops"], row["sdpa_tflops"]
        if row["seqlen"] == FLOOR_SEQLEN and not row["causal"]:
            metrics[f"flash_attn_fwd_{args.dtype}_hd{args.headdim}_tflops"] = row["flash_attn_tflops"]
    props = torch.cuda.get_device_properties(device)
    backend = "triton" if os.environ.get("FLASH_ATTENTION_TRITON_AMD_ENABLE") == "TRUE" else "extension"
    return {"schema": SCHEMA, "device": props.name, "arch": getattr(props, "gcnArchName", None),
            "backend": backend, "metrics": metrics, "rows": rows}


def print_table(result: dict) -> None:
    print(f"flash-attention forward ({result['backend']} backend) vs torch SDPA on {result['device']}")
    print(f"{'seqlen':>7} {'causal':>6} {'batch':>5} {'heads':>5} {'flash_attn TFLOP/s':>19} {'SDPA TFLOP/s':>13} {'ratio':>6}")
    for row in result["rows"]:
        ratio = row["flash_attn_tflops"] / row["sdpa_tflops"]
        print(f"{row['seqlen']:>7} {str(row['causal']):>6} {row['batch']:>5} {row['heads']:>5} "
              f"{row['flash_attn_tflops']:>19.1f} {row['sdpa_tflops']:>13.1f} {ratio:>6.2f}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    result = run(args)
    print_table(result)
    if args.json:  # atomically: the validation suite reads this file
        from rocstack.fsutil import write_atomic

        write_atomic(args.json, json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
