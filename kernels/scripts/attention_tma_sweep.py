"""Device sweep: TMA kernel configs vs SDPA, prefill hd128 bf16, B*S = 16k, interleaved.

``python kernels/scripts/attention_tma_sweep.py [--json FILE] [--variants a,b] [--rounds N]``

Every implementation (SDPA and each variant) is captured in a CUDA graph and
timed by replay, so the numbers are GPU time only. SDPA's throughput moves by
up to 25% within one run (clocks under the card's power cap), so the variants
and SDPA are timed in interleaved rounds - SDPA, variant 1, variant 2, ...,
then the same in reverse order (what ran just before sets the clock a kernel
starts at) - and each variant's ratio is taken within its round against that
round's SDPA. One line per (shape, variant): median TFLOP/s, the median and
min-max of the per-round ratio to SDPA, and the relative error against SDPA's
output (float64).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

from rocstack_kernels.graph_replay import GraphReplay
from rocstack_kernels.attention.flash_attention import attention_flops, flash_attention
from rocstack_kernels.bench import interleaved_ms, write_json
from rocstack_kernels.testing import rel_err

_SHORT = {"TMA": True, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4}
VARIANTS = {
    "shipped": {},
    "64x64 s3": {**_SHORT, "num_stages": 3},
    "64x64 s3 qreg": {**_SHORT, "num_stages": 3, "Q_IN_REGS": True},
    # Q in registers and 2 stages: 64 KiB smem; 168 registers fit three CTAs per SM.
    "64x64 s2 qreg r168": {**_SHORT, "num_stages": 2, "Q_IN_REGS": True, "maxnreg": 168},
    "64x64 s2 qreg": {**_SHORT, "num_stages": 2, "Q_IN_REGS": True},
    "128x64 w4 s2": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    "128x64 w8 s2 qreg": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 2,
                          "Q_IN_REGS": True},
    "128x64 w8 s3 qreg": {"TMA": True, "BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3,
                          "Q_IN_REGS": True},
}
SHAPES = [(64, 256, 16), (32, 512, 16), (16, 1024, 16), (8, 2048, 16), (4, 4096, 16), (2, 8192, 16),
          (1, 16384, 16), (4, 4096, 32), (1, 16384, 32)]


def _shape_rows(batch: int, seqlen: int, heads: int, causal: bool, names: list[str], rounds: int) -> list[dict]:
    q, k, v = (torch.randn(batch, seqlen, heads, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    flops = attention_flops(batch, heads, seqlen, seqlen, 128, causal)
    shape = f"B{batch} S{seqlen} H{heads} {'causal' if causal else 'full'}"
    ref = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal).transpose(1, 2)
    sdpa = GraphReplay(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal))
    runs, rows = {}, {}
    for name in names:
        row = rows[name] = {"shape": shape, "variant": name}
        try:
            out = torch.full_like(q, float("nan"))
            flash_attention(q, k, v, causal, out=out, config=VARIANTS[name])
            row["err"] = rel_err(out, ref)
            runs[name] = GraphReplay(lambda o=out, c=VARIANTS[name]: flash_attention(q, k, v, causal, out=o, config=c))
        except Exception as exc:  # a variant that does not compile is a row, not the end of the sweep
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:100]}"
    times = interleaved_ms({"sdpa": sdpa, **runs}, rounds=rounds, rep=30)
    sdpa_ms = times.pop("sdpa")
    for name, row in rows.items():
        row["sdpa_tflops"] = flops / statistics.median(sdpa_ms) / 1e9
        if isinstance(times.get(name), Exception):
            row["error"] = f"{type(times[name]).__name__}: {str(times[name]).strip().splitlines()[0][:100]}"
        elif name in times:
            ratios = [s / t for s, t in zip(sdpa_ms, times[name])]
            row.update(tflops=flops / statistics.median(times[name]) / 1e9, ratio=statistics.median(ratios),
                       ratio_min=min(ratios), ratio_max=max(ratios))
    return list(rows.values())


def _line(row: dict) -> str:
    head = f"{row['shape']:<24} {row['variant']:<20}"
    if "error" in row:
        return f"{head} error {row['error']}"
    return (f"{head} {row['tflops']:5.0f} TF  {row['ratio']:.3f}x sdpa ({row['ratio_min']:.3f}-"
            f"{row['ratio_max']:.3f}; sdpa {row['sdpa_tflops']:.0f} TF)  err {row['err']:.1e}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--variants", help="comma list of variant names (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-seqlen", type=int, default=1 << 30, help="only shapes up to this sequence length")
    parser.add_argument("--min-seqlen", type=int, default=0, help="only shapes from this sequence length")
    args = parser.parse_args(argv)
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if not torch.cuda.is_available():
        print("error: no GPU visible to torch; the sweep needs an sm90+ GPU (the TMA kernel)", file=sys.stderr)
        return 2
    rows = []
    for batch, seqlen, heads in SHAPES:
        if not args.min_seqlen <= seqlen <= args.max_seqlen:
            continue
        for causal in (False, True):
            for row in _shape_rows(batch, seqlen, heads, causal, names, args.rounds):
                rows.append(row)
                print(_line(row), flush=True)
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
