"""Flash-attention forward (prefill): Triton kernel, launcher and float64 reference.

Layouts follow the serving engines (flash-attn's conventions):

* dense batch: q ``[B, Sq, Hq, D]``, k/v ``[B, Sk, Hkv, D]``, out like q,
  lse ``[B, Hq, Sq]`` (float32, natural log);
* packed variable-length batch: q ``[total_q, Hq, D]``, k/v ``[total_k, Hkv, D]``,
  ``cu_seqlens_q``/``cu_seqlens_k`` int32 ``[B + 1]`` prefix sums, lse ``[Hq, total_q]``.

Hq must be a multiple of Hkv (MHA, GQA, MQA). With ``causal=True`` and
``Sq != Sk`` the mask is aligned to the end (chunked prefill): query row ``i``
sees keys ``j <= i + Sk - Sq``.

A row that sees no key at all (``Sk == 0``, or a causal row with
``i + Sk - Sq < 0``) is *fully masked*: its output is defined as zeros and its
log-sum-exp as ``-inf`` (the softmax over an empty set has no value; zeros are
what the LSE merge of split attention expects from an empty part).
"""

from __future__ import annotations

import functools
import itertools

import torch
import triton
import triton.language as tl

from rocstack_kernels.attention.configs import prefill_config, prefill_has_tma, prefill_short_limit
from rocstack_kernels.attention.flash_attention_tma import aot_specializations as tma_aot_specializations
from rocstack_kernels.attention.flash_attention_tma import launch_tma, tma_path_applies
from rocstack_kernels.attention.inputs import (
    ATTENTION_DTYPES,
    check_attention_dtype,
    check_cu_seqlens,
    check_head_dim,
    check_heads,
    check_int32_vector,
    output_buffer,
    resolve_softmax_scale,
)
from rocstack_kernels.attention.triton_helpers import LOG2E, dot
from rocstack_kernels.checks import check_same_device, check_tensor
from rocstack_kernels.configs import AMD_ONLY_OPTIONS, CUDA_ONLY_OPTIONS, launch_options, with_override
from rocstack_kernels.launch import cdiv
from rocstack_kernels.registry import KernelEntry, Specialization, cases_in
from rocstack_kernels.target import Target, target_of

SUPPORTED_HEAD_DIMS = (64, 128, 256)


@triton.jit
def _attend_kv_blocks(
    acc, l_i, m_i, q,
    k_base, v_base, stride_ks, stride_vs,
    offs_n, offs_d, row_limit,
    lo, hi, seqlen_k, qk_scale,
    MASKED: tl.constexpr, BLOCK_N: tl.constexpr, UPCAST_DOT: tl.constexpr,
):
    """Online-softmax update of (acc, l_i, m_i) over keys [lo, hi) in BLOCK_N steps.

    ``MASKED`` blocks (the causal diagonal and the ragged tail) hide key ``j``
    from row ``i`` when ``j > row_limit[i]``; the others are known to be fully
    visible and skip that work. ``m_i`` lives in the log2 domain (scores are
    pre-multiplied by softmax_scale * log2(e) so exp2 can be used).
    """
    for start_n in range(lo, hi, BLOCK_N):
        offs_kv = start_n + offs_n
        if MASKED:
            in_range = offs_kv < seqlen_k
            k = tl.load(k_base + offs_kv[:, None] * stride_ks + offs_d[None, :],
                        mask=in_range[:, None], other=0.0)
        else:
            k = tl.load(k_base + offs_kv[:, None] * stride_ks + offs_d[None, :])
        qk = dot(q, tl.trans(k), tl.zeros([q.shape[0], BLOCK_N], tl.float32), UPCAST_DOT)
        if MASKED:
            # Hidden scores get (distance past the limit) x 1e30 subtracted by
            # arithmetic, not by a select: on AMD every select over the tile holds
            # a 64-bit lane mask per element in SGPRs, which spilled. Positions are
            # exact in float32 up to 2**24. exp2 of -1e30 below any real max is 0;
            # a row with nothing visible yet is reset by alpha = 0 once a visible
            # key arrives, and flagged empty at the end if none ever does.
            distance = tl.minimum(row_limit[:, None] - offs_kv.to(tl.float32)[None, :], 0.0)
            qk = qk * qk_scale + distance * 1.0e30
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            p = tl.math.exp2(qk - m_new[:, None])
            v = tl.load(v_base + offs_kv[:, None] * stride_vs + offs_d[None, :],
                        mask=in_range[:, None], other=0.0)
        else:
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            p = tl.math.exp2(qk * qk_scale - m_new[:, None])
            v = tl.load(v_base + offs_kv[:, None] * stride_vs + offs_d[None, :])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = dot(p.to(v.dtype), v, acc, UPCAST_DOT)
        m_i = m_new
    return acc, l_i, m_i


# Lengths and the GQA group are runtime values that must not be specialized
# (== 1, % 16): one prebuilt binary then serves every batch shape.
@triton.jit(do_not_specialize=["stride_lb", "stride_lh", "seqlen_q_dense", "seqlen_k_dense", "group_size"])
def flash_attention_fwd_kernel(
    Q, K, V, Out, Lse, cu_seqlens_q, cu_seqlens_k,
    stride_qb, stride_qs, stride_qh,
    stride_kb, stride_ks, stride_kh,
    stride_vb, stride_vs, stride_vh,
    stride_ob, stride_os, stride_oh,
    stride_lb, stride_lh,
    seqlen_q_dense, seqlen_k_dense, group_size, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    IS_CAUSAL: tl.constexpr, IS_VARLEN: tl.constexpr, RETURN_LSE: tl.constexpr,
    UPCAST_DOT: tl.constexpr = False,
):
    head = tl.program_id(1)
    batch = tl.program_id(2)
    kv_head = head // group_size
    if IS_VARLEN:
        q_start = tl.load(cu_seqlens_q + batch)
        seqlen_q = tl.load(cu_seqlens_q + batch + 1) - q_start
        k_start = tl.load(cu_seqlens_k + batch)
        seqlen_k = tl.load(cu_seqlens_k + batch + 1) - k_start
        q_off = q_start.to(tl.int64) * stride_qs
        k_off = k_start.to(tl.int64) * stride_ks
        v_off = k_start.to(tl.int64) * stride_vs
        o_off = q_start.to(tl.int64) * stride_os
        l_off = q_start.to(tl.int64)
    else:
        seqlen_q = seqlen_q_dense
        seqlen_k = seqlen_k_dense
        q_off = batch.to(tl.int64) * stride_qb
        k_off = batch.to(tl.int64) * stride_kb
        v_off = batch.to(tl.int64) * stride_vb
        o_off = batch.to(tl.int64) * stride_ob
        l_off = batch.to(tl.int64) * stride_lb
    # Causal work grows with the block index: launch the heaviest blocks first
    # so the tail of the grid is made of short programs.
    if IS_CAUSAL:
        block_m = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        block_m = tl.program_id(0)
    m0 = block_m * BLOCK_M
    if m0 >= seqlen_q:
        return

    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < seqlen_q

    q_base = Q + q_off + head * stride_qh
    k_base = K + k_off + kv_head * stride_kh
    v_base = V + v_off + kv_head * stride_vh
    q = tl.load(q_base + offs_m[:, None] * stride_qs + offs_d[None, :], mask=row_ok[:, None], other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)

    # Keys [0, full_hi) are visible to every row of the block; [full_hi, hi)
    # need the mask. Causal: row i sees keys j <= i + (seqlen_k - seqlen_q).
    diag = seqlen_k - seqlen_q
    if IS_CAUSAL:
        row_limit = tl.minimum(offs_m + diag, seqlen_k - 1).to(tl.float32)
        hi = tl.minimum(seqlen_k, m0 + BLOCK_M + diag)
        full_hi = tl.maximum(tl.minimum(m0 + diag + 1, seqlen_k), 0)
    else:
        row_limit = tl.zeros([BLOCK_M], tl.float32) + (seqlen_k - 1)
        hi = seqlen_k
        full_hi = seqlen_k
    full_hi = (full_hi // BLOCK_N) * BLOCK_N
    acc, l_i, m_i = _attend_kv_blocks(
        acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_vs, offs_n, offs_d, row_limit,
        0, full_hi, seqlen_k, qk_scale, False, BLOCK_N, UPCAST_DOT)
    acc, l_i, m_i = _attend_kv_blocks(
        acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_vs, offs_n, offs_d, row_limit,
        full_hi, hi, seqlen_k, qk_scale, True, BLOCK_N, UPCAST_DOT)

    # A row that never saw a visible key (max still -inf, or only -1e30 masked
    # scores) is fully masked: zeros, and lse = -inf.
    empty = m_i < -1.0e29
    # One reciprocal per row, then multiplies: a divide per element is a MUFU op each
    # (BLOCK_M x HEAD_DIM of them, a quarter of the loop's exp2 work at S = 512).
    inv_l = tl.where(empty, 0.0, 1.0 / tl.where(empty, 1.0, l_i))
    out = acc * inv_l[:, None]
    o_base = Out + o_off + head * stride_oh
    tl.store(o_base + offs_m[:, None] * stride_os + offs_d[None, :], out.to(Out.dtype.element_ty),
             mask=row_ok[:, None])
    if RETURN_LSE:
        # m_i + log2(l) is the log2-domain LSE; times ln(2) gives the natural log.
        lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(tl.where(empty, 1.0, l_i))) * 0.6931471805599453)
        l_base = Lse + l_off + head * stride_lh
        tl.store(l_base + offs_m, lse, mask=row_ok)


def _check_inputs(q, k, v, cu_seqlens_q, cu_seqlens_k) -> tuple[bool, int]:
    """Validate; returns (varlen, longest query sequence)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, dtypes=ATTENTION_DTYPES, last_dim_contiguous=True)
    for name, t in (("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)):
        if t is not None:
            check_int32_vector(name, t)
    check_same_device(q=q, k=k, v=v, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)
    check_attention_dtype(q=q, k=k, v=v)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    if varlen and (cu_seqlens_q is None or cu_seqlens_k is None):
        missing = "cu_seqlens_k" if cu_seqlens_k is None else "cu_seqlens_q"
        raise ValueError(f"{missing} must be given together with the other cu_seqlens (packed batch)")
    rank = 3 if varlen else 4
    layout = "[total_tokens, heads, head_dim]" if varlen else "[batch, seqlen, heads, head_dim]"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != rank:
            raise ValueError(f"{name} must have {rank} dims {layout}, got shape {tuple(t.shape)}")
    if k.shape != v.shape:
        raise ValueError(f"v has shape {tuple(v.shape)}; it must equal k's shape {tuple(k.shape)}")
    check_head_dim("q", q.shape[-1], SUPPORTED_HEAD_DIMS)
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k has head_dim {k.shape[-1]}; it must equal q's head_dim {q.shape[-1]}")
    check_heads(q.shape[-2], k.shape[-2])
    if varlen:
        max_seqlen_q = check_cu_seqlens("cu_seqlens_q", cu_seqlens_q, q.shape[0])
        check_cu_seqlens("cu_seqlens_k", cu_seqlens_k, k.shape[0])
        if cu_seqlens_q.shape != cu_seqlens_k.shape:
            raise ValueError(f"cu_seqlens_k describes {cu_seqlens_k.shape[0] - 1} sequences but "
                             f"cu_seqlens_q {cu_seqlens_q.shape[0] - 1}")
        return True, max_seqlen_q
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"k has batch {k.shape[0]}; it must equal q's batch {q.shape[0]}")
    return False, q.shape[1]


@functools.lru_cache(maxsize=1024)
def _cached_plan(target: Target, head_dim: int, dtype: torch.dtype, causal: bool, varlen: bool,
                 return_lse: bool, short: bool, tma: bool, override: tuple) -> tuple[dict, dict]:
    config = prefill_config(target, head_dim, short, tma)
    known = set(config) | set(AMD_ONLY_OPTIONS) | set(CUDA_ONLY_OPTIONS) | ({"Q_IN_REGS"} if tma else set())
    config = with_override(config, dict(override), known, "flash_attention")
    constexprs = {"HEAD_DIM": head_dim, "BLOCK_M": config["BLOCK_M"], "BLOCK_N": config["BLOCK_N"],
                  "IS_CAUSAL": causal, "IS_VARLEN": varlen, "RETURN_LSE": return_lse,
                  "UPCAST_DOT": target.backend == "interpreter" and dtype == torch.bfloat16}
    if tma:
        constexprs["Q_IN_REGS"] = bool(config.get("Q_IN_REGS", False))
    return constexprs, launch_options(config, target)


_short_limit = functools.lru_cache(maxsize=None)(prefill_short_limit)
_has_tma = functools.lru_cache(maxsize=None)(prefill_has_tma)


def _plan(target: Target, head_dim: int, dtype: torch.dtype, causal: bool, varlen: bool, return_lse: bool,
          max_seqlen_q: int | None = None, override: dict | None = None, tma: bool = False) -> tuple[dict, dict]:
    """Constexprs and compiler options of one launch; shared by the launcher and the AOT list.

    ``max_seqlen_q`` picks the arch's short-sequence tile tier when it has one
    (None: the long tier); ``tma`` the TMA kernel's tiles. Cached: the launcher
    runs this on every call.
    """
    limit = _short_limit(target, head_dim, tma, bool(causal))
    short = limit is not None and max_seqlen_q is not None and max_seqlen_q <= limit
    constexprs, options = _cached_plan(target, head_dim, dtype, bool(causal), bool(varlen), bool(return_lse),
                                       short, tma, tuple(sorted((override or {}).items())))
    return dict(constexprs), dict(options)


@functools.lru_cache(maxsize=None)
def _unused(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Stand-in for a pointer the kernel does not read; one dtype, so prebuilt signatures match."""
    return torch.zeros(16, device=device, dtype=dtype)


def flash_attention(q, k, v, causal: bool, softmax_scale: float | None = None,
                    cu_seqlens_q=None, cu_seqlens_k=None, return_lse: bool = False,
                    out=None, config: dict | None = None):
    """Attention forward; returns ``out`` or ``(out, lse)`` with ``return_lse``.

    ``config`` overrides keys of the per-arch config (``BLOCK_M``, ``BLOCK_N``,
    ``num_warps``, ``num_stages``, ...; ``TMA`` True/False forces or forbids the
    sm90+ TMA kernel where it applies); it exists for tuning sweeps.
    """
    varlen, max_seqlen_q = _check_inputs(q, k, v, cu_seqlens_q, cu_seqlens_k)
    scale = resolve_softmax_scale(softmax_scale, q.shape[-1])
    head_dim, num_heads = q.shape[-1], q.shape[-2]
    group = num_heads // k.shape[-2]
    out = output_buffer(out, q)
    if varlen:
        # The grid needs the longest sequence: check_cu_seqlens read it in its
        # one host sync (serving engines pass max_seqlen; this signature has none).
        batch = cu_seqlens_q.shape[0] - 1
        seqlen_q = seqlen_k = 0
        lse_shape = (num_heads, q.shape[0])
        strides = (0, q.stride(0), q.stride(1), 0, k.stride(0), k.stride(1),
                   0, v.stride(0), v.stride(1), 0, out.stride(0), out.stride(1), 0, q.shape[0])
    else:
        batch, seqlen_q, seqlen_k = q.shape[0], q.shape[1], k.shape[1]
        lse_shape = (batch, num_heads, seqlen_q)
        strides = (*q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
                   num_heads * seqlen_q, seqlen_q)
    lse = torch.empty(lse_shape, device=q.device, dtype=torch.float32) if return_lse else None
    if batch == 0 or max_seqlen_q == 0 or num_heads == 0:
        return (out, lse) if return_lse else out
    target, override = target_of(q.device), dict(config or {})
    tma = override.pop("TMA", None)
    tma = ((_has_tma(target, head_dim) if tma is None else tma) and not varlen
           and tma_path_applies(target, q, k, v, out))
    constexprs, options = _plan(target, head_dim, q.dtype, causal, varlen, return_lse, max_seqlen_q, override, tma)
    lse_arg = lse if return_lse else _unused(q.device, torch.float32)
    if tma:
        launch_tma(q, k, v, out, lse_arg, strides[-2:], group, scale * LOG2E, causal, constexprs, options)
    else:
        no_seqlens = _unused(q.device, torch.int32)
        flash_attention_fwd_kernel[(cdiv(max_seqlen_q, constexprs["BLOCK_M"]), num_heads, batch)](
            q, k, v, out, lse_arg, cu_seqlens_q if varlen else no_seqlens, cu_seqlens_k if varlen else no_seqlens,
            *strides, seqlen_q, seqlen_k, group, scale * LOG2E, **constexprs, **options)
    return (out, lse) if return_lse else out


def _reference_one(q, k, v, causal, scale):
    """float64 attention of one sequence: q [Sq, Hq, D], k/v [Sk, Hkv, D]."""
    sq, hq, _ = q.shape
    sk, hkv, _ = k.shape
    qd = q.double().transpose(0, 1)  # [Hq, Sq, D]
    kd = k.double().repeat_interleave(hq // hkv, dim=1).transpose(0, 1)
    vd = v.double().repeat_interleave(hq // hkv, dim=1).transpose(0, 1)
    scores = qd @ kd.transpose(1, 2) * scale  # [Hq, Sq, Sk]
    if causal:
        rows = torch.arange(sq, device=q.device)[:, None]
        cols = torch.arange(sk, device=q.device)[None, :]
        scores = scores.masked_fill(cols > rows + (sk - sq), float("-inf"))
    lse = (torch.logsumexp(scores, dim=-1) if sk
           else torch.full((hq, sq), float("-inf"), dtype=torch.float64, device=q.device))
    weights = torch.exp(scores - lse[..., None])
    weights = torch.nan_to_num(weights, nan=0.0)  # fully masked rows -> zeros
    out = (weights @ vd).transpose(0, 1)  # [Sq, Hq, D]
    return out, lse


def flash_attention_reference(q, k, v, causal, softmax_scale=None, cu_seqlens_q=None, cu_seqlens_k=None):
    """Naive SDPA in float64 with the same layouts; returns (out, lse) in float64."""
    scale = resolve_softmax_scale(softmax_scale, q.shape[-1])
    if cu_seqlens_q is None:
        parts = [_reference_one(q[b], k[b], v[b], causal, scale) for b in range(q.shape[0])]
        out = torch.stack([p[0] for p in parts]) if parts else q.double()
        lse = torch.stack([p[1] for p in parts]) if parts else torch.empty((0, q.shape[2], q.shape[1]))
        return out, lse
    cq, ck = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    out = torch.zeros(q.shape, dtype=torch.float64, device=q.device)
    lse = torch.full((q.shape[1], q.shape[0]), float("-inf"), dtype=torch.float64, device=q.device)
    for b in range(len(cq) - 1):
        o, l = _reference_one(q[cq[b]:cq[b + 1]], k[ck[b]:ck[b + 1]], v[ck[b]:ck[b + 1]], causal, scale)
        out[cq[b]:cq[b + 1]] = o
        lse[:, cq[b]:cq[b + 1]] = l
    return out, lse


def attention_flops(batch: int, heads: int, seqlen_q: int, seqlen_k: int, head_dim: int, causal: bool) -> float:
    """FlashAttention convention: 4*B*H*Sq*Sk*D, halved for causal."""
    flops = 4.0 * batch * heads * seqlen_q * seqlen_k * head_dim
    return flops / 2 if causal else flops


__all__ = ["flash_attention", "flash_attention_reference", "attention_flops"]


# --- registry: AOT specializations and bench cases ---------------------------------------

AOT_DTYPES = (torch.bfloat16, torch.float16)
# (varlen, return_lse): dense prefill, packed prefill, packed prefill whose LSE a
# chunked-prefill / cascade merge needs.
AOT_LAYOUTS = ((False, False), (True, False), (True, True))
_STRIDE_EXAMPLE = 16 * 1024  # every runtime stride is a multiple of 16 elements (head_dim >= 64), or 0


def _tiers(target: Target, head_dim: int) -> tuple[int | None, ...]:
    """Example max_seqlen_q of each tile tier the arch has (long, and short if any)."""
    limit = _short_limit(target, head_dim)
    return (None,) if limit is None else (None, limit)


def aot_specializations(target: Target) -> list[Specialization]:
    specs = []
    for dtype in AOT_DTYPES:
        for head_dim in SUPPORTED_HEAD_DIMS:
            for causal in (False, True):
                for (varlen, return_lse), tier in itertools.product(AOT_LAYOUTS, _tiers(target, head_dim)):
                    constexprs, options = _plan(target, head_dim, dtype, causal, varlen, return_lse, tier)
                    args = {"Q": dtype, "K": dtype, "V": dtype, "Out": dtype, "Lse": torch.float32,
                            "cu_seqlens_q": torch.int32, "cu_seqlens_k": torch.int32,
                            "stride_lb": 1000, "stride_lh": 17, "seqlen_q_dense": 17, "seqlen_k_dense": 17,
                            "group_size": 1, "qk_scale": 0.125, **constexprs}
                    for name in flash_attention_fwd_kernel.arg_names:
                        if name.startswith("stride_") and name not in args:
                            args[name] = _STRIDE_EXAMPLE
                    label = (f"{str(dtype)[6:]} d{head_dim} {'causal' if causal else 'full'}"
                             f"{' varlen' if varlen else ''}{' lse' if return_lse else ''}"
                             f"{' short' if tier else ''}")
                    specs.append(Specialization(flash_attention_fwd_kernel, label, args, options))
    return specs + tma_aot_specializations(target, _plan, AOT_DTYPES, SUPPORTED_HEAD_DIMS, _has_tma, _short_limit)


KERNELS = (
    KernelEntry("flash_attention", aot_specializations,
                cases_in("rocstack_kernels.attention.bench", "prefill_cases"),
                "attention forward (prefill): MHA/GQA/MQA, causal, packed varlen, LSE"),
)
