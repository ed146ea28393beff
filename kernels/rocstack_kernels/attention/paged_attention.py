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
writing an unnormalised partial (acc, max, sum) that is merged with
log-sum-exp weights: by a second kernel, or (``fused_merge``) by the last split
of each (sequence, kv head) to finish, which finds out through an atomic
counter - one launch instead of two, and no kernel boundary on the critical path.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from rocstack_kernels.attention.configs import decode_config
from rocstack_kernels.attention.inputs import (
    ATTENTION_DTYPES,
    check_attention_dtype,
    check_head_dim,
    check_heads,
    check_int32_vector,
    output_buffer,
    resolve_softmax_scale,
)
from rocstack_kernels.attention.triton_helpers import LOG2E, dot
from rocstack_kernels.checks import check_same_device, check_tensor
from rocstack_kernels.configs import AMD_ONLY_OPTIONS, launch_options, with_override
from rocstack_kernels.launch import cdiv, next_power_of_2
from rocstack_kernels.registry import KernelEntry, Specialization, cases_in
from rocstack_kernels.target import Target, compute_units, target_of

SUPPORTED_HEAD_DIMS = (64, 128, 256)


# Runtime sizes must not be specialized (== 1, % 16) so one prebuilt binary
# serves every batch; the GQA group is runtime too (BLOCK_G bounds it).
@triton.jit
def _merge_head(Part_acc, Part_ml, first, num_splits, out_ptrs, HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr,
                FROM_L2: tl.constexpr):
    """Merge the ``num_splits`` partials of one (sequence, head) starting at row ``first``.

    Walks the splits BLOCK_S at a time with a running max, so one binary serves any
    split count. ``FROM_L2``: read the partials past L1 (``.cg``), for partials other
    programs of the same launch wrote.
    """
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, HEAD_DIM)
    m_run = tl.full([1], float("-inf"), tl.float32)
    total = tl.zeros([1], tl.float32)
    acc = tl.zeros([HEAD_DIM], tl.float32)
    for start in range(0, num_splits, BLOCK_S):
        split_ok = start + offs_s < num_splits
        part = first + start + offs_s
        if FROM_L2:
            m = tl.load(Part_ml + part * 2, mask=split_ok, other=float("-inf"), cache_modifier=".cg")
            l = tl.load(Part_ml + part * 2 + 1, mask=split_ok, other=0.0, cache_modifier=".cg")
            part_acc = tl.load(Part_acc + part[:, None] * HEAD_DIM + offs_d[None, :], mask=split_ok[:, None],
                               other=0.0, cache_modifier=".cg")
        else:
            m = tl.load(Part_ml + part * 2, mask=split_ok, other=float("-inf"))
            l = tl.load(Part_ml + part * 2 + 1, mask=split_ok, other=0.0)
            part_acc = tl.load(Part_acc + part[:, None] * HEAD_DIM + offs_d[None, :], mask=split_ok[:, None],
                               other=0.0)
        m_new = tl.maximum(m_run, tl.max(m, 0))
        # No split with tokens yet (empty sequence): keep every weight at 0, not NaN.
        m_shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        w = tl.math.exp2(m - m_shift)
        rescale = tl.math.exp2(m_run - m_shift)
        acc = acc * rescale + tl.sum(part_acc * w[:, None], 0)
        total = total * rescale + tl.sum(w * l, 0)
        m_run = m_new
    out = acc / tl.where(total == 0.0, 1.0, total)
    tl.store(out_ptrs + offs_d, out.to(out_ptrs.dtype.element_ty))


@triton.jit(do_not_specialize=["stride_bt", "tokens_per_split", "group"])
def paged_attention_decode_kernel(
    Q, K_cache, V_cache, block_tables, seq_lens, Out, Part_acc, Part_ml, Counters,
    stride_qb, stride_qh,
    stride_kblk, stride_ktok, stride_kh,
    stride_vblk, stride_vtok, stride_vh,
    stride_bt,
    stride_ob, stride_oh,
    tokens_per_split, group, qk_scale,
    BLOCK_G: tl.constexpr, HEAD_DIM: tl.constexpr,
    PAGE_SIZE: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT: tl.constexpr,
    UPCAST_DOT: tl.constexpr = False, FUSED_MERGE: tl.constexpr = False, BLOCK_S: tl.constexpr = 16,
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
    heads = kv_head * group + offs_g
    head_ok = offs_g < group
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
        part = (batch * tl.num_programs(1) * group + heads) * num_splits + split
        tl.store(Part_acc + part.to(tl.int64)[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=head_ok[:, None])
        tl.store(Part_ml + part.to(tl.int64) * 2, m_i, mask=head_ok)
        tl.store(Part_ml + part.to(tl.int64) * 2 + 1, l_i, mask=head_ok)
        if FUSED_MERGE:
            # Every thread's partial stores happen before the counter's release (the
            # barrier), and the last split's reads of the others' partials after its
            # acquire; those reads bypass L1 (FROM_L2).
            tl.debug_barrier()
            counter = Counters + batch * tl.num_programs(1) + kv_head
            finished = tl.atomic_add(counter, 1, sem="acq_rel", scope="gpu")
            if finished == num_splits - 1:
                tl.debug_barrier()
                first_head = kv_head * group
                for g in range(group):
                    row = (batch * tl.num_programs(1) * group + first_head + g).to(tl.int64)
                    _merge_head(Part_acc, Part_ml, row * num_splits, num_splits,
                                Out + batch.to(tl.int64) * stride_ob + (first_head + g) * stride_oh,
                                HEAD_DIM, BLOCK_S, True)
                # Zero again for the next launch (a CUDA graph replays with the same counters).
                tl.atomic_xchg(counter, 0, sem="relaxed", scope="gpu")
    else:
        out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        tl.store(Out + batch.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :],
                 out.to(Out.dtype.element_ty), mask=head_ok[:, None])


@triton.jit(do_not_specialize=["num_heads", "num_splits"])
def paged_attention_merge_kernel(
    Part_acc, Part_ml, Out, stride_ob, stride_oh, num_heads, num_splits,
    HEAD_DIM: tl.constexpr, BLOCK_S: tl.constexpr,
):
    """Merge the context splits of one (sequence, head) with log-sum-exp weights."""
    batch = tl.program_id(0)
    head = tl.program_id(1)
    first = (batch * num_heads + head).to(tl.int64) * num_splits
    _merge_head(Part_acc, Part_ml, first, num_splits, Out + batch.to(tl.int64) * stride_ob + head * stride_oh,
                HEAD_DIM, BLOCK_S, False)


def _check_inputs(q, k_cache, v_cache, block_tables, seq_lens) -> None:
    check_tensor("q", q, dtypes=ATTENTION_DTYPES, ndim=3, last_dim_contiguous=True)
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache)):
        check_tensor(name, t, dtypes=ATTENTION_DTYPES, ndim=4, last_dim_contiguous=True)
    check_tensor("block_tables", block_tables, dtypes=(torch.int32,), ndim=2)
    check_int32_vector("seq_lens", seq_lens, q.shape[0])
    check_same_device(q=q, k_cache=k_cache, v_cache=v_cache, block_tables=block_tables, seq_lens=seq_lens)
    check_attention_dtype(q=q, k_cache=k_cache, v_cache=v_cache)
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"v_cache has shape {tuple(v_cache.shape)}; it must equal k_cache's "
                         f"{tuple(k_cache.shape)} [num_blocks, block_size, kv_heads, head_dim]")
    check_head_dim("q", q.shape[-1], SUPPORTED_HEAD_DIMS)
    if k_cache.shape[-1] != q.shape[-1]:
        raise ValueError(f"k_cache has head_dim {k_cache.shape[-1]}; it must equal q's {q.shape[-1]}")
    if k_cache.shape[1] < 1:
        raise ValueError("k_cache has block_size 0 (dim 1); pages need at least one token")
    check_heads(q.shape[1], k_cache.shape[2], kv_name="k_cache")
    if block_tables.shape[0] != q.shape[0]:
        raise ValueError(f"block_tables has {block_tables.shape[0]} rows but q has batch {q.shape[0]}")
    if block_tables.stride(1) != 1 and block_tables.shape[1] > 1:
        raise ValueError("block_tables must have contiguous rows; call .contiguous()")


def _plan(target: Target, head_dim: int, dtype: torch.dtype, page_size: int, group: int, split: bool,
          override: dict | None = None) -> tuple[dict, dict, dict]:
    """(constexprs, compiler options, split policy) of one launch.

    Shared by the launcher and the AOT list so both hash to one cache entry.
    Cached: the launcher runs it on every decode step.
    """
    constexprs, options, policy = _cached_plan(target, head_dim, dtype, page_size, group, split,
                                               tuple(sorted((override or {}).items())))
    return dict(constexprs), dict(options), dict(policy)


@functools.lru_cache(maxsize=1024)
def _cached_plan(target: Target, head_dim: int, dtype: torch.dtype, page_size: int, group: int, split: bool,
                 override: tuple) -> tuple[dict, dict, dict]:
    config = decode_config(target)
    # num_splits has no table entry: a sweep may force the split count.
    config = with_override(config, dict(override), set(config) | set(AMD_ONLY_OPTIONS) | {"num_splits"},
                           "paged_attention_decode")
    constexprs = {"BLOCK_G": max(16, next_power_of_2(group)), "HEAD_DIM": head_dim,
                  "PAGE_SIZE": page_size, "BLOCK_N": config["BLOCK_N"], "SPLIT": bool(split),
                  "UPCAST_DOT": target.backend == "interpreter" and dtype == torch.bfloat16,
                  "FUSED_MERGE": bool(split and config["fused_merge"]), "BLOCK_S": config["merge_block_s"]}
    policy = {key: config.get(key) for key in ("programs_per_cu", "min_split_tokens", "max_splits", "num_splits",
                                                "fused_merge")}
    return constexprs, launch_options(config, target), policy


MERGE_OPTIONS = {"num_warps": 4, "num_stages": 1}


def _split_plan(device: torch.device, batch: int, kv_heads: int, context_bound: int,
                block_n: int, policy: dict) -> tuple[int, int]:
    """(num_splits, tokens_per_split): at most programs_per_cu x CUs programs in all.

    Rounded down: one more split than fits would start a second, mostly idle wave of
    programs (batch 8 x 8 kv heads on 132 SMs x 2: 5 splits = 320 programs for 264
    slots; 4 splits = 256 fill one wave). ``context_bound`` is the table capacity
    (max_blocks x block_size), known on the host without reading seq_lens back.
    """
    bound = max(context_bound, 1)
    if policy.get("num_splits"):
        splits = policy["num_splits"]
    else:
        cus = compute_units(device)
        wanted = max(1, policy["programs_per_cu"] * cus // max(batch * kv_heads, 1))
        splits = min(wanted, cdiv(bound, policy["min_split_tokens"]), policy["max_splits"])
    tokens = cdiv(cdiv(bound, max(splits, 1)), block_n) * block_n
    return cdiv(bound, tokens), tokens


@functools.lru_cache(maxsize=None)
def _unused(device: torch.device) -> torch.Tensor:
    """float32 stand-in for the split buffers when there is no split (never read)."""
    return torch.zeros(16, device=device, dtype=torch.float32)


_COUNTERS: dict[torch.device, torch.Tensor] = {}


def _merge_counters(device: torch.device, count: int) -> torch.Tensor:
    """Zeroed int32 counters for the fused merge, one per (sequence, kv head), kept per device.

    The kernel sets each counter back to 0 after its merge, so they are zero between
    launches and a CUDA graph can replay the launch without a memset. Launches on one
    device share them: decode launches must not run concurrently on two streams of
    one device (serving engines run decode on one stream).
    """
    counters = _COUNTERS.get(device)
    if counters is None or counters.numel() < count:
        counters = torch.zeros(max(count, 1024), device=device, dtype=torch.int32)
        _COUNTERS[device] = counters
    return counters


def paged_attention_decode(q, k_cache, v_cache, block_tables, seq_lens, softmax_scale=None,
                           out=None, config: dict | None = None):
    """Decode attention over a paged KV cache; returns ``[B, Hq, D]``.

    ``config`` overrides keys of the per-arch config (``BLOCK_N``, ``num_warps``,
    ..., and ``num_splits`` to force a split count); for tuning sweeps and tests.
    """
    _check_inputs(q, k_cache, v_cache, block_tables, seq_lens)
    scale = resolve_softmax_scale(softmax_scale, q.shape[-1])
    batch, num_heads, head_dim = q.shape
    page_size, kv_heads = k_cache.shape[1], k_cache.shape[2]
    group = num_heads // kv_heads
    out = output_buffer(out, q)
    if batch == 0 or num_heads == 0:
        return out
    target = target_of(q.device)
    constexprs, options, policy = _plan(target, head_dim, q.dtype, page_size, group, False, config)
    num_splits, tokens_per_split = _split_plan(q.device, batch, kv_heads, block_tables.shape[1] * page_size,
                                               constexprs["BLOCK_N"], policy)
    split = num_splits > 1
    fused = split and bool(policy["fused_merge"])
    constexprs["SPLIT"] = split
    constexprs["FUSED_MERGE"] = fused
    if split:
        part_acc = torch.empty((batch, num_heads, num_splits, head_dim), device=q.device, dtype=torch.float32)
        part_ml = torch.empty((batch, num_heads, num_splits, 2), device=q.device, dtype=torch.float32)
    else:
        part_acc = part_ml = _unused(q.device)
    counters = _merge_counters(q.device, batch * kv_heads) if fused else _unused(q.device)
    paged_attention_decode_kernel[(batch, kv_heads, num_splits)](
        q, k_cache, v_cache, block_tables, seq_lens, out, part_acc, part_ml, counters,
        q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        block_tables.stride(0), out.stride(0), out.stride(1),
        tokens_per_split, group, scale * LOG2E, **constexprs, **options,
    )
    if split and not fused:
        paged_attention_merge_kernel[(batch, num_heads)](
            part_acc, part_ml, out, out.stride(0), out.stride(1), num_heads, num_splits,
            HEAD_DIM=head_dim, BLOCK_S=constexprs["BLOCK_S"], **MERGE_OPTIONS,
        )
    return out


def gather_pages(cache: torch.Tensor, block_tables: torch.Tensor, seq_len: int, row: int) -> torch.Tensor:
    """Contiguous ``[seq_len, Hkv, D]`` tokens of sequence ``row`` from a paged cache."""
    page_size = cache.shape[1]
    pages = block_tables[row, : cdiv(seq_len, page_size)].long()
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


# --- registry: AOT specializations and bench cases ---------------------------------------

AOT_DTYPES = (torch.bfloat16, torch.float16)
AOT_PAGE_SIZES = (16,)
AOT_GROUPS = (8,)  # any GQA group up to 16 shares BLOCK_G = 16
_STRIDE_EXAMPLE = 16 * 1024  # cache/q/out strides are multiples of 16 elements (head_dim >= 64)


def aot_specializations(target: Target) -> list[Specialization]:
    specs = []
    for dtype in AOT_DTYPES:
        for head_dim in SUPPORTED_HEAD_DIMS:
            for page_size in AOT_PAGE_SIZES:
                for group in AOT_GROUPS:
                    for split in (False, True):
                        constexprs, options, _ = _plan(target, head_dim, dtype, page_size, group, split)
                        counters = torch.int32 if constexprs["FUSED_MERGE"] else torch.float32
                        args = {"Q": dtype, "K_cache": dtype, "V_cache": dtype, "block_tables": torch.int32,
                                "seq_lens": torch.int32, "Out": dtype, "Part_acc": torch.float32,
                                "Part_ml": torch.float32, "Counters": counters, "stride_bt": 17,
                                "tokens_per_split": 256, "group": group, "qk_scale": 0.125, **constexprs}
                        for name in paged_attention_decode_kernel.arg_names:
                            if name.startswith("stride_") and name not in args:
                                args[name] = _STRIDE_EXAMPLE
                        label = (f"{str(dtype)[6:]} d{head_dim} page{page_size} g<={constexprs['BLOCK_G']}"
                                 f"{' split' if split else ''}{' fused-merge' if constexprs['FUSED_MERGE'] else ''}")
                        specs.append(Specialization(paged_attention_decode_kernel, label, args, options))
            if not constexprs["FUSED_MERGE"]:  # the split launches use the merge kernel
                merge_args = {"Part_acc": torch.float32, "Part_ml": torch.float32, "Out": dtype,
                              "stride_ob": _STRIDE_EXAMPLE, "stride_oh": _STRIDE_EXAMPLE, "num_heads": 32,
                              "num_splits": 8, "HEAD_DIM": head_dim, "BLOCK_S": constexprs["BLOCK_S"]}
                specs.append(Specialization(paged_attention_merge_kernel, f"{str(dtype)[6:]} d{head_dim} merge",
                                            merge_args, MERGE_OPTIONS))
    return specs


KERNELS = (
    KernelEntry("paged_attention_decode", aot_specializations,
                cases_in("rocstack_kernels.attention.bench", "decode_cases"),
                "decode attention over a paged KV cache: GQA, ragged lengths, split-K + LSE merge"),
)
