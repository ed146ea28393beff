"""Paged-attention decode: Triton kernels, launcher and float64 reference.

One query token per sequence against a paged KV cache (vLLM's layout):

* q ``[B, Hq, D]``; k_cache / v_cache ``[num_blocks, block_size, Hkv, D]``;
* block_tables int32 ``[B, max_blocks_per_seq]``: page ``i`` of sequence ``b``
  is ``k_cache[block_tables[b, i]]``; entries past the sequence are never read;
* seq_lens int32 ``[B]``: tokens in each sequence (0 allowed);
* returns ``[B, Hq, D]`` in q's dtype. A sequence of length 0 has nothing to
  attend to: its output is zeros (same convention as flash_attention's fully
  masked rows).

One program handles one (sequence, kv head, context split) and all the query
heads that share that kv head, so each K/V page is read once per kv head and
the GQA group forms the M side of a tensor-core dot. When batch x kv heads is
too small to fill the GPU, the context is split over several programs, each
writing an unnormalised partial (acc, max, sum) that a second kernel merges
with log-sum-exp weights.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rocstack_kernels.attention.configs import compute_units, decode_config, device_arch
from rocstack_kernels.attention.flash_attention import LOG2E
from rocstack_kernels.attention.inputs import (
    check_attention_dtype,
    check_head_dim,
    check_heads,
    check_int32_vector,
    check_last_dim_contiguous,
    check_same_device,
    interpreting,
    resolve_softmax_scale,
)
from rocstack_kernels.attention.triton_helpers import dot

SUPPORTED_HEAD_DIMS = (64, 128, 256)


@triton.jit
def paged_attention_decode_kernel(
    Q, K_cache, V_cache, block_tables, seq_lens, Out, Part_acc, Part_ml,
    stride_qb, stride_qh,
    stride_kblk, stride_ktok, stride_kh,
    stride_vblk, stride_vtok, stride_vh,
    stride_bt,
    stride_ob, stride_oh,
    tokens_per_split, qk_scale,
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT: tl.constexpr,
    UPCAST_DOT: tl.constexpr = False,
):
    batch = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    seq_len = tl.load(seq_lens + batch)
    start = split * tokens_per_split
    end = tl.minimum(start + tokens_per_split, seq_len)

    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, HEAD_DIM)
    offs_n = tl.arange(0, BLOCK_N)
    heads = kv_head * GROUP + offs_g
    head_ok = offs_g < GROUP
    q = tl.load(Q + batch.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
                mask=head_ok[:, None], other=0.0)
    table = block_tables + batch.to(tl.int64) * stride_bt

    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, HEAD_DIM], tl.float32)
    for start_n in range(start, end, BLOCK_N):
        tokens = start_n + offs_n
        token_ok = tokens < end
        pages = tl.load(table + tokens // PAGE_SIZE, mask=token_ok, other=0).to(tl.int64)
        slot = tokens % PAGE_SIZE
        k_rows = K_cache + pages * stride_kblk + slot * stride_ktok + kv_head * stride_kh
        v_rows = V_cache + pages * stride_vblk + slot * stride_vtok + kv_head * stride_vh
        k = tl.load(k_rows[:, None] + offs_d[None, :], mask=token_ok[:, None], other=0.0)
        v = tl.load(v_rows[:, None] + offs_d[None, :], mask=token_ok[:, None], other=0.0)
        qk = dot(q, tl.trans(k), tl.zeros([BLOCK_G, BLOCK_N], tl.float32), UPCAST_DOT)
        qk = tl.where(token_ok[None, :], qk * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.math.exp2(qk - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = dot(p.to(v.dtype), v, acc * alpha[:, None], UPCAST_DOT)
        m_i = m_new
    # Every step holds at least one valid token, so m_i is finite after the
    # first step; a split with no step keeps m = -inf, l = 0, acc = 0.
    if SPLIT:
        num_splits = tl.num_programs(2)
        part = (batch * tl.num_programs(1) * GROUP + heads) * num_splits + split
        tl.store(Part_acc + part.to(tl.int64)[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=head_ok[:, None])
        tl.store(Part_ml + part.to(tl.int64) * 2, m_i, mask=head_ok)
        tl.store(Part_ml + part.to(tl.int64) * 2 + 1, l_i, mask=head_ok)
    else:
        out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        tl.store(Out + batch.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :],
                 out.to(Out.dtype.element_ty), mask=head_ok[:, None])


@triton.jit
def paged_attention_merge_kernel(
    Part_acc, Part_ml, Out, stride_ob, stride_oh, num_heads, num_splits,
    HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Merge the context splits of one (sequence, head) with log-sum-exp weights."""
    batch = tl.program_id(0)
    head = tl.program_id(1)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, HEAD_DIM)
    split_ok = offs_s < num_splits
    part = (batch * num_heads + head).to(tl.int64) * num_splits + offs_s
    m = tl.load(Part_ml + part * 2, mask=split_ok, other=float("-inf"))
    l = tl.load(Part_ml + part * 2 + 1, mask=split_ok, other=0.0)
    m_max = tl.max(m, 0)
    m_max = tl.where(m_max == float("-inf"), 0.0, m_max)  # empty sequence: all weights 0
    w = tl.math.exp2(m - m_max)
    total = tl.sum(w * l, 0)
    acc = tl.load(Part_acc + part[:, None] * HEAD_DIM + offs_d[None, :], mask=split_ok[:, None], other=0.0)
    out = tl.sum(acc * w[:, None], 0) / tl.where(total == 0.0, 1.0, total)
    tl.store(Out + batch.to(tl.int64) * stride_ob + head * stride_oh + offs_d, out.to(Out.dtype.element_ty))


def _check_inputs(q, k_cache, v_cache, block_tables, seq_lens):
    check_same_device(q=q, k_cache=k_cache, v_cache=v_cache, block_tables=block_tables, seq_lens=seq_lens)
    check_attention_dtype(q=q, k_cache=k_cache, v_cache=v_cache)
    if q.dim() != 3:
        raise ValueError(f"q: expected 3 dims [batch, heads, head_dim], got shape {tuple(q.shape)}")
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
        if t.dim() != 4:
            raise ValueError(f"{name}: expected 4 dims [num_blocks, block_size, kv_heads, head_dim], "
                             f"got shape {tuple(t.shape)}")
        check_last_dim_contiguous(name, t)
    check_last_dim_contiguous("q", q)
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"v_cache: shape {tuple(v_cache.shape)} must equal k_cache's {tuple(k_cache.shape)}")
    check_head_dim("q", q.shape[-1], SUPPORTED_HEAD_DIMS)
    if k_cache.shape[-1] != q.shape[-1]:
        raise ValueError(f"k_cache: head_dim {k_cache.shape[-1]} must equal q's head_dim {q.shape[-1]}")
    if k_cache.shape[1] < 1:
        raise ValueError("k_cache: block_size (dim 1) must be at least 1")
    check_heads(q.shape[1], k_cache.shape[2], kv_name="k_cache")
    batch = q.shape[0]
    check_int32_vector("seq_lens", seq_lens, batch)
    if not isinstance(block_tables, torch.Tensor) or block_tables.dim() != 2 or block_tables.dtype != torch.int32:
        got = (f"{block_tables.dtype} with shape {tuple(block_tables.shape)}"
               if isinstance(block_tables, torch.Tensor) else type(block_tables).__name__)
        raise ValueError(f"block_tables: expected a 2-D torch.int32 tensor [batch, max_blocks], got {got}")
    if block_tables.shape[0] != batch:
        raise ValueError(f"block_tables: {block_tables.shape[0]} rows but q has batch {batch}")
    if block_tables.stride(1) != 1 and block_tables.shape[1] > 1:
        raise ValueError("block_tables: rows must be contiguous; call .contiguous()")


def _split_plan(device, batch: int, kv_heads: int, context_bound: int, cfg: dict) -> tuple[int, int]:
    """(num_splits, tokens_per_split) so that about programs_per_cu x CUs programs run.

    ``context_bound`` is the table capacity (max_blocks x block_size), known on
    the host without reading seq_lens back from the GPU.
    """
    block_n = cfg["BLOCK_N"]
    cus = 4 if device_arch(device) == "interpreter" else compute_units(device.index or 0)
    wanted = triton.cdiv(cfg["programs_per_cu"] * cus, max(batch * kv_heads, 1))
    most = max(1, triton.cdiv(context_bound, cfg["min_split_tokens"]))
    splits = max(1, min(wanted, most))
    tokens = triton.cdiv(triton.cdiv(max(context_bound, 1), splits), block_n) * block_n
    return triton.cdiv(max(context_bound, 1), tokens), tokens


def paged_attention_decode(q, k_cache, v_cache, block_tables, seq_lens, softmax_scale=None,
                           config: dict | None = None):
    """Decode attention over a paged KV cache; returns ``[B, Hq, D]``.

    ``config`` overrides the per-arch config (keys of ``configs.DECODE_CONFIGS``,
    plus ``num_splits`` to force a split count); for tuning sweeps and tests.
    """
    _check_inputs(q, k_cache, v_cache, block_tables, seq_lens)
    scale = resolve_softmax_scale(softmax_scale, q.shape[-1])
    batch, num_heads, head_dim = q.shape
    page_size, kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = num_heads // kv_heads
    out = torch.empty_like(q)
    if batch == 0 or num_heads == 0:
        return out
    cfg = decode_config(q.device)
    if config:
        cfg.update(config)
    forced_splits = cfg.pop("num_splits", None)
    context_bound = block_tables.shape[1] * page_size
    num_splits, tokens_per_split = _split_plan(q.device, batch, kv_heads, context_bound, cfg)
    if forced_splits:
        tokens_per_split = triton.cdiv(triton.cdiv(max(context_bound, 1), forced_splits), cfg["BLOCK_N"]) * cfg["BLOCK_N"]
        num_splits = triton.cdiv(max(context_bound, 1), tokens_per_split)
    cfg.pop("programs_per_cu")
    cfg.pop("min_split_tokens")
    split = num_splits > 1
    if split:
        part_acc = torch.empty((batch, num_heads, num_splits, head_dim), device=q.device, dtype=torch.float32)
        part_ml = torch.empty((batch, num_heads, num_splits, 2), device=q.device, dtype=torch.float32)
    else:
        part_acc = part_ml = out  # not read when SPLIT is False
    paged_attention_decode_kernel[(batch, kv_heads, num_splits)](
        q, k_cache, v_cache, block_tables, seq_lens, out, part_acc, part_ml,
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        block_tables.stride(0),
        out.stride(0), out.stride(1),
        tokens_per_split, scale * LOG2E,
        GROUP=group, BLOCK_G=max(16, triton.next_power_of_2(group)), HEAD_DIM=head_dim,
        PAGE_SIZE=page_size, SPLIT=split,
        UPCAST_DOT=interpreting() and q.dtype == torch.bfloat16,
        **cfg,
    )
    if split:
        paged_attention_merge_kernel[(batch, num_heads)](
            part_acc, part_ml, out, out.stride(0), out.stride(1), num_heads, num_splits,
            HEAD_DIM=head_dim, BLOCK_S=triton.next_power_of_2(num_splits), num_warps=4,
        )
    return out


def gather_pages(cache: torch.Tensor, block_tables: torch.Tensor, seq_len: int, row: int) -> torch.Tensor:
    """Contiguous ``[seq_len, Hkv, D]`` tokens of sequence ``row`` from a paged cache."""
    page_size = cache.shape[1]
    pages = block_tables[row, : triton.cdiv(seq_len, page_size)].long()
    return cache[pages].reshape(-1, cache.shape[2], cache.shape[3])[:seq_len]


def paged_attention_reference(q, k_cache, v_cache, block_tables, seq_lens, softmax_scale=None):
    """float64 attention of each sequence over its gathered pages; ``[B, Hq, D]`` float64."""
    scale = resolve_softmax_scale(softmax_scale, q.shape[-1])
    batch, num_heads, _ = q.shape
    group = num_heads // k_cache.shape[2]
    out = torch.zeros(q.shape, dtype=torch.float64, device=q.device)
    for row, seq_len in enumerate(seq_lens.tolist()):
        if seq_len == 0:
            continue
        k = gather_pages(k_cache, block_tables, seq_len, row).double().repeat_interleave(group, dim=1)
        v = gather_pages(v_cache, block_tables, seq_len, row).double().repeat_interleave(group, dim=1)
        scores = torch.einsum("hd,shd->hs", q[row].double(), k) * scale
        out[row] = torch.einsum("hs,shd->hd", torch.softmax(scores, dim=-1), v)
    return out
