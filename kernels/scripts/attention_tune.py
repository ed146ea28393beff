"""Config sweep for the attention kernels on the GPU at hand (the data behind configs.py).

``python kernels/scripts/attention_tune.py [--json FILE]`` times candidate tile
configs of both kernels on the target shapes of the issue (prefill: hd128 bf16,
B*S = 16k, H 16/32; decode: 32 q / 8 kv heads, d128, batch 64 x 4096 and small
batches with long contexts, timed per call and from a CUDA graph)
next to SDPA, checks every candidate's output against the default config's,
and prints one line per candidate. Pick winners into ``configs.py`` by hand:
the sweep reports, it does not rewrite data.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from rocstack_kernels.attention.bench import paged_inputs
from rocstack_kernels.attention.flash_attention import attention_flops, flash_attention
from rocstack_kernels.attention.paged_attention import paged_attention_decode
from rocstack_kernels.bench import write_json
from rocstack_kernels.testing import rel_err

PREFILL_CANDIDATES = [
    {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3},
    {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3},
    {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
    {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 4},
    {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 4},
    {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
    {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 3},
    {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3},
    {"BLOCK_M": 128, "BLOCK_N": 32, "num_warps": 4, "num_stages": 3},
]
# (batch, seqlen, heads): B*S = 16k tokens, short sequences first (where SDPA leads most).
PREFILL_SHAPES = [(64, 256, 16), (32, 512, 16), (16, 1024, 16), (8, 2048, 16), (4, 4096, 32), (1, 16384, 16)]
DECODE_CANDIDATES = [
    {"BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
    {"BLOCK_N": 64, "num_warps": 4, "num_stages": 3, "programs_per_cu": 8},
    {"BLOCK_N": 64, "num_warps": 4, "num_stages": 3, "programs_per_cu": 2},
    {"BLOCK_N": 128, "num_warps": 4, "num_stages": 3},
    {"BLOCK_N": 128, "num_warps": 8, "num_stages": 3, "programs_per_cu": 2},
    {"BLOCK_N": 64, "num_warps": 4, "num_stages": 4, "min_split_tokens": 512},
]
DECODE_SHAPES = [(64, 4096), (1, 32768), (8, 8192)]  # (batch, context), 32 q / 8 kv heads, d128


def _ms(fn) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


def sweep_prefill(device, max_seqlen: int | None = None) -> list[dict]:
    rows = []
    for batch, seqlen, heads in PREFILL_SHAPES:
        if max_seqlen and seqlen > max_seqlen:
            continue
        q, k, v = (torch.randn(batch, seqlen, heads, 128, device=device, dtype=torch.bfloat16) for _ in range(3))
        qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        for causal in (False, True):
            flops = attention_flops(batch, heads, seqlen, seqlen, 128, causal)
            sdpa = _ms(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal))
            reference = flash_attention(q, k, v, causal).double()
            for cand in PREFILL_CANDIDATES:
                row = {"kernel": "prefill", "shape": f"B{batch} S{seqlen} H{heads} {'causal' if causal else 'full'}",
                       "config": cand, "sdpa_tflops": flops / sdpa / 1e9}
                try:
                    out = flash_attention(q, k, v, causal, config=cand)
                    row["rel_err_vs_default"] = rel_err(out, reference)
                    row["tflops"] = flops / _ms(lambda c=cand: flash_attention(q, k, v, causal, config=c)) / 1e9
                    row["vs_sdpa"] = row["tflops"] / row["sdpa_tflops"]
                except Exception as exc:  # an over-size config is a result (out of shared memory)
                    row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
                rows.append(row)
    return rows


def _ms_graph(fn) -> float:
    """Median ms of ``fn`` replayed from a CUDA graph: no host launch overhead, as serving decode runs."""
    import triton.testing

    return float(triton.testing.do_bench_cudagraph(fn, rep=100, return_mode="median"))


def sweep_decode(device) -> list[dict]:
    src = torch.randn(2**28, device=device, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    copy_gbps = 2 * src.numel() * 2 / _ms(lambda s=src, d=dst: d.copy_(s)) / 1e6
    del src, dst
    rows = []
    for batch, context in DECODE_SHAPES:
        q, k_cache, v_cache, tables, lens = paged_inputs([context] * batch, 32, 8, 128, 16, device)
        bytes_moved = 2 * batch * context * 8 * 128 * 2
        reference = paged_attention_decode(q, k_cache, v_cache, tables, lens).double()
        out = torch.empty_like(q)
        for cand in DECODE_CANDIDATES:
            row = {"kernel": "decode", "shape": f"B{batch} ctx{context} 32q/8kv", "config": cand,
                   "copy_gbps": copy_gbps}
            try:
                paged_attention_decode(q, k_cache, v_cache, tables, lens, out=out, config=cand)
                row["rel_err_vs_default"] = rel_err(out, reference)
                call = (lambda c=cand: paged_attention_decode(q, k_cache, v_cache, tables, lens, out=out, config=c))
                row["gbps"] = bytes_moved / _ms(call) / 1e6
                row["graph_gbps"] = bytes_moved / _ms_graph(call) / 1e6
                row["pct_copy"] = 100 * row["gbps"] / copy_gbps
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
            rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        cfg = " ".join(f"{k}={v}" for k, v in r["config"].items())
        if "error" in r:
            lines.append(f"{r['kernel']:<8} {r['shape']:<26} {cfg:<60} error {r['error']}")
        elif r["kernel"] == "prefill":
            lines.append(f"{r['kernel']:<8} {r['shape']:<26} {cfg:<60} {r['tflops']:6.0f} TFLOP/s "
                         f"{r['vs_sdpa']:.2f}x sdpa({r['sdpa_tflops']:.0f}) err {r['rel_err_vs_default']:.1e}")
        else:
            lines.append(f"{r['kernel']:<8} {r['shape']:<26} {cfg:<60} {r['gbps']:6.0f} GB/s "
                         f"{r['pct_copy']:.0f}% copy({r['copy_gbps']:.0f}) graph {r['graph_gbps']:.0f} GB/s "
                         f"err {r['rel_err_vs_default']:.1e}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--only", choices=("prefill", "decode"), help="sweep one kernel")
    parser.add_argument("--max-seqlen", type=int, help="prefill: only shapes up to this sequence length")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no GPU visible to torch; the sweep needs one")
        return 2
    device = torch.device("cuda")
    rows = ((sweep_prefill(device, args.max_seqlen) if args.only != "decode" else [])
            + (sweep_decode(device) if args.only != "prefill" else []))
    print(format_rows(rows))
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
