"""Bench cases of the attention kernels, in the registry's ``BenchCase`` form.

Prefill: ours vs ``torch.nn.functional.scaled_dot_product_attention`` (on NVIDIA
it picks the cuDNN / flash backend) and vs naive eager attention (scores
materialized, softmax, second matmul: the seed's baseline), at B*S = 16k tokens
for S = 256..16k, H = 16 and 32, head dim 128, bf16. FLOPs follow the
FlashAttention convention (4*B*H*S^2*D, halved for causal).

Every prefill case runs twice: eager (Python and launch cost per call included)
and replayed from CUDA graphs (GPU time only; the " graph" cases).

Decode: ours vs SDPA over the same KV gathered into contiguous [B, Hkv, S, D]
(gathered before timing: the most favourable form for the peer) and vs
gather + SDPA, against the copy-bandwidth ceiling; bytes are the fewest one
call must move (every K/V token of every sequence once, q, out, block table).
Decode cases replay every implementation from a CUDA graph, as serving engines
run decode steps; two "eager" cases show the per-call host overhead on top.

``invoke bench --kernel flash_attention,paged_attention_decode`` (or
``python -m rocstack_kernels.bench``) times these cases; ``plot_prefill_speedup``
draws the seed's speedup-vs-sequence-length plot from that harness's report.
"""

from __future__ import annotations

import io
import re

import torch
import torch.nn.functional as F

from rocstack_kernels.attention.flash_attention import attention_flops, flash_attention
from rocstack_kernels.attention.paged_attention import paged_attention_decode
from rocstack_kernels.graph_replay import GraphReplay
from rocstack_kernels.registry import BenchCase, BenchSetup

from rocstack.fsutil import write_atomic

PREFILL_TOKENS = 16384
PREFILL_SEQLENS = (256, 512, 1024, 2048, 4096, 8192, 16384)
# Naive attention materializes B*H*S^2 scores; past this many elements it is skipped (memory).
NAIVE_MAX_SCORES = 2**33


def naive_attention(q, k, v, causal: bool):
    """Eager attention in the input dtype on [B, H, S, D]: the baseline flash attention replaces."""
    scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    if causal:
        s = q.shape[-2]
        scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _prefill_case(seqlen: int, heads: int, causal: bool, head_dim: int = 128, graph: bool = False) -> BenchCase:
    """Eager, each call timed with its Python and launch cost; with ``graph`` every
    implementation replays from a CUDA graph, so the time is the GPU's alone (the
    kernels' own speed; eager timing also charges any host time longer than the
    benchmark's cache flush between calls). Naive attention runs eager only."""
    batch = max(1, PREFILL_TOKENS // seqlen)

    def setup(device) -> BenchSetup:
        shape = (batch, seqlen, heads, head_dim)
        q, k, v = (torch.randn(shape, device=device, dtype=torch.bfloat16) for _ in range(3))
        # The peers take [B, H, S, D]; transposed copies are made once, outside the timing.
        qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        out = torch.empty_like(q)
        wrap = GraphReplay if graph else (lambda fn: fn)
        peers = {"sdpa": wrap(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal))}
        if not graph and batch * heads * seqlen * seqlen <= NAIVE_MAX_SCORES:
            peers["naive eager"] = lambda: naive_attention(qt, kt, vt, causal)
        return BenchSetup(run=wrap(lambda: flash_attention(q, k, v, causal, out=out)), peers=peers,
                          variant=lambda config: wrap(lambda: flash_attention(q, k, v, causal, out=out, config=config)),
                          ceiling="bf16_mm", flops=int(attention_flops(batch, heads, seqlen, seqlen, head_dim, causal)))

    mask = "causal" if causal else "full"
    return BenchCase(f"prefill B{batch} S{seqlen} H{heads} d{head_dim} {mask} bf16{' graph' if graph else ''}", setup)


def prefill_cases() -> list[BenchCase]:
    shapes = [(s, 16, causal) for causal in (False, True) for s in PREFILL_SEQLENS]
    shapes += [(s, 32, causal) for causal in (False, True) for s in (4096, 16384)]
    return [_prefill_case(*shape, graph=graph) for graph in (False, True) for shape in shapes]


def paged_inputs(seq_lens: list[int], q_heads: int, kv_heads: int, head_dim: int, page_size: int,
                 device, dtype=torch.bfloat16):
    """Random q and a paged cache whose pages are scattered in a random order."""
    pages_per_seq = [-(-n // page_size) for n in seq_lens]
    width = max(max(pages_per_seq, default=0), 1)
    num_pages = sum(pages_per_seq) + 1
    order = torch.randperm(num_pages, device=device).to(torch.int32)
    tables = torch.zeros((len(seq_lens), width), dtype=torch.int32, device=device)
    used = 0
    for row, count in enumerate(pages_per_seq):
        tables[row, :count] = order[used:used + count]
        used += count
    k_cache = torch.randn((num_pages, page_size, kv_heads, head_dim), device=device, dtype=dtype)
    v_cache = torch.randn_like(k_cache)
    q = torch.randn((len(seq_lens), q_heads, head_dim), device=device, dtype=dtype)
    lens = torch.tensor(seq_lens, dtype=torch.int32, device=device)
    return q, k_cache, v_cache, tables, lens


def _gathered(cache, tables, seqlen: int):
    """[B, Hkv, S, D] contiguous copy of equal-length sequences' pages."""
    batch, page_size = tables.shape[0], cache.shape[1]
    pages = tables[:, : -(-seqlen // page_size)].long()
    return cache[pages].reshape(batch, -1, cache.shape[2], cache.shape[3])[:, :seqlen].transpose(1, 2)


def _decode_case(batch: int, context: int, q_heads: int = 32, kv_heads: int = 8, head_dim: int = 128,
                 page_size: int = 16, graph: bool = True) -> BenchCase:
    """Decode as serving engines run it: replayed from a CUDA graph (``graph``), so the
    time is the GPU's; without it, Python and launch overhead per call count too."""

    def setup(device) -> BenchSetup:
        q, k_cache, v_cache, tables, lens = paged_inputs([context] * batch, q_heads, kv_heads, head_dim,
                                                          page_size, device)
        out = torch.empty_like(q)
        k_dense = _gathered(k_cache, tables, context).contiguous()
        v_dense = _gathered(v_cache, tables, context).contiguous()
        q4 = q.unsqueeze(2)

        def gather_then_sdpa():
            kd, vd = _gathered(k_cache, tables, context), _gathered(v_cache, tables, context)
            return F.scaled_dot_product_attention(q4, kd, vd, enable_gqa=True)

        elt = q.element_size()
        kv_bytes = 2 * batch * context * kv_heads * head_dim * elt
        wrap = GraphReplay if graph else (lambda fn: fn)
        return BenchSetup(
            run=wrap(lambda: paged_attention_decode(q, k_cache, v_cache, tables, lens, out=out)),
            variant=lambda config: wrap(lambda: paged_attention_decode(q, k_cache, v_cache, tables, lens, out=out,
                                                                       config=config)),
            peers={"sdpa pre-gathered": wrap(lambda: F.scaled_dot_product_attention(q4, k_dense, v_dense,
                                                                                    enable_gqa=True)),
                   "gather+sdpa": wrap(gather_then_sdpa)},
            ceiling="copy", bytes_moved=kv_bytes + 2 * q.numel() * elt + tables.numel() * 4)

    return BenchCase(f"decode B{batch} ctx{context} {q_heads}q/{kv_heads}kv d{head_dim} page{page_size} bf16"
                     f"{' graph' if graph else ' eager'}", setup)


def decode_cases() -> list[BenchCase]:
    return [_decode_case(64, 4096), _decode_case(64, 4096, graph=False), _decode_case(1, 32768),
            _decode_case(1, 32768, graph=False), _decode_case(8, 8192), _decode_case(256, 1024),
            _decode_case(64, 4096, q_heads=32, kv_heads=32)]


_PREFILL_NAME = re.compile(r"prefill B\d+ S(\d+) H16 d128 (full|causal) bf16")


def plot_prefill_speedup(report: dict, path: str) -> None:
    """Speedup of ours and of SDPA over naive eager attention vs sequence length (H=16, d128).

    ``report`` is the bench harness's report (``rocstack.kernels-bench/v1``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times: dict[tuple[str, str], dict[int, float]] = {}
    for row in report["results"]:
        match = _PREFILL_NAME.fullmatch(row["case"])
        if match and "ms" in row:
            times.setdefault((match.group(2), row["impl"]), {})[int(match.group(1))] = row["ms"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for mask in ("full", "causal"):
        naive = times.get((mask, "naive eager"), {})
        for impl, style in (("rocstack", "-o"), ("sdpa", "--s")):
            series = times.get((mask, impl), {})
            seqlens = sorted(s for s in series if s in naive)
            ax.plot(seqlens, [naive[s] / series[s] for s in seqlens], style, label=f"{impl} ({mask})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length (B*S = 16k tokens, 16 heads, d128, bf16)")
    ax.set_ylabel("speedup over naive eager attention")
    ax.set_title(f"attention forward - {report['device']} - {report['date'][:10]}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, png.getvalue())
