"""Flash-attention forward with Q/K/V/O moved by TMA (NVIDIA sm90+).

The dense-batch path of ``flash_attention`` for the head dims whose config has
a ``tma`` entry (hd128 on Hopper; the CPU interpreter runs it too, so the small
tests hold it to the reference without a GPU). Same math, masks and
fully-masked-row rules as the portable pointer kernel in ``flash_attention``;
what differs is how tiles move: host-built TMA tensor descriptors (the copy
engine fills shared memory asynchronously, one descriptor per tensor), which
frees the registers and instructions that pointer arithmetic and cp.async
cost. AMD has no TMA, so it keeps the pointer kernel. Triton 3.6's Hopper
warp specialization (``tl.range(..., warp_specialize=True)``) was tried on this
kernel and does not compile (WSDataPartition "unsupported op type" with 4 warps,
a dominance assertion with 2-D descriptors; with 8 warps the TTGIR has no
warp_specialize op), so the loop is the plain software pipeline.

Each [B, S, H, D] tensor is described as 3-D ``[B, S, H * D]`` (legal when the
head stride is D, as in contiguous tensors and slices of a fused QKV): a tile
``[1, BLOCK, D]`` at ``(batch, row, head * D)``. The copy engine zero-fills rows
past ``S`` of the batch and clips the output store there, so ragged lengths need
no row masks on loads or stores.
"""

from __future__ import annotations

import itertools

import torch
import triton
import triton.language as tl

try:
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # triton < 3.4 has no host tensor descriptors: the pointer kernel serves
    TensorDescriptor = None

from rocstack_kernels.attention.triton_helpers import dot
from rocstack_kernels.launch import SpecializedLauncher, cdiv
from rocstack_kernels.target import Target


@triton.jit
def _attend_kv_blocks_tma(
    acc, l_i, m_i, q, desc_k, desc_v, batch, kv_col, offs_m, offs_n, diag,
    lo, hi, seqlen_k, qk_scale,
    MASKED: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, UPCAST_DOT: tl.constexpr,
):
    """Online-softmax update over keys [lo, hi); ``m_i`` in the log2 domain.

    ``MASKED`` blocks hide key j from row i when j > i + diag (causal) or
    j >= seqlen_k (ragged tail); the steady-state blocks skip that work.
    """
    for start_n in tl.range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        k = desc_k.load([batch, start_n, kv_col]).reshape([BLOCK_N, HEAD_DIM])
        qk = dot(q, k.T, tl.zeros([q.shape[0], BLOCK_N], tl.float32), UPCAST_DOT)
        if MASKED:
            cols = start_n + offs_n
            visible = (cols[None, :] <= offs_m[:, None] + diag) & (cols[None, :] < seqlen_k)
            qk = qk * qk_scale + tl.where(visible, 0.0, -1.0e30)
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            p = tl.math.exp2(qk - m_new[:, None])
        else:
            m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            p = tl.math.exp2(qk * qk_scale - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        v = desc_v.load([batch, start_n, kv_col]).reshape([BLOCK_N, HEAD_DIM])
        acc = dot(p.to(v.dtype), v, acc, UPCAST_DOT)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit(do_not_specialize=["stride_lb", "stride_lh", "seqlen_q", "seqlen_k", "group_size"])
def flash_attention_fwd_tma_kernel(
    desc_q, desc_k, desc_v, desc_o, Lse, stride_lb, stride_lh,
    seqlen_q, seqlen_k, group_size, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    IS_CAUSAL: tl.constexpr, RETURN_LSE: tl.constexpr, UPCAST_DOT: tl.constexpr = False,
    TAIL: tl.constexpr = True, GQA: tl.constexpr = True, Q_IN_REGS: tl.constexpr = False,
):
    head = tl.program_id(1)
    batch = tl.program_id(2)
    # Causal work grows with the block index: heaviest blocks first (shorter tail).
    if IS_CAUSAL:
        block_m = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        block_m = tl.program_id(0)
    m0 = block_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    q_col = head * HEAD_DIM
    # GQA=False (one KV head per query head) skips the division: measured 2% at S = 512.
    if GQA:
        kv_col = (head // group_size) * HEAD_DIM
    else:
        kv_col = q_col
    q = desc_q.load([batch, m0, q_col]).reshape([BLOCK_M, HEAD_DIM])
    if Q_IN_REGS:
        # Triton feeds a dot operand that comes straight from a load to wgmma from shared
        # memory and keeps it there for the whole loop; one that is computed stays in
        # registers (wgmma's register-A form). Adding zeros (exact; -0 becomes +0, which
        # no product sees) frees the Q tile's shared memory: 64x64 tiles with 2 stages
        # then need 64 KiB, room for three CTAs per SM with a register cap.
        q = q + tl.zeros_like(q)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    # Keys [0, full_hi) are visible to every row of the block, [full_hi, hi) need the mask.
    # Causal: row i sees keys j <= i + diag; without the mask, diag = seqlen_k hides no key j < seqlen_k.
    if IS_CAUSAL:
        diag = seqlen_k - seqlen_q
        hi = tl.minimum(seqlen_k, m0 + BLOCK_M + diag)
        full_hi = tl.maximum(tl.minimum(m0 + diag + 1, seqlen_k), 0)
    else:
        diag = seqlen_k
        hi = seqlen_k
        full_hi = seqlen_k
    full_hi = (full_hi // BLOCK_N) * BLOCK_N
    acc, l_i, m_i = _attend_kv_blocks_tma(
        acc, l_i, m_i, q, desc_k, desc_v, batch, kv_col, offs_m, offs_n, diag,
        0, full_hi, seqlen_k, qk_scale, False, HEAD_DIM, BLOCK_N, UPCAST_DOT)
    # TAIL=False (non-causal, seqlen_k a multiple of BLOCK_N) compiles the masked loop
    # out: even empty, its pipelined prologue and larger code cost 5% at S = 512 on the H100.
    if TAIL:
        acc, l_i, m_i = _attend_kv_blocks_tma(
            acc, l_i, m_i, q, desc_k, desc_v, batch, kv_col, offs_m, offs_n, diag,
            full_hi, hi, seqlen_k, qk_scale, True, HEAD_DIM, BLOCK_N, UPCAST_DOT)

    # A row that never saw a visible key is fully masked: zeros, and lse = -inf.
    # Without the masked loop every row saw all keys (seqlen_k >= 1 on this path).
    if TAIL:
        empty = m_i < -1.0e29
    else:
        empty = tl.zeros([BLOCK_M], tl.int1)
    # One reciprocal per row, then multiplies: a divide per element is a MUFU op each
    # (BLOCK_M x HEAD_DIM of them, a quarter of the loop's exp2 work at S = 512).
    inv_l = tl.where(empty, 0.0, 1.0 / tl.where(empty, 1.0, l_i))
    out = acc * inv_l[:, None]
    desc_o.store([batch, m0, q_col], out.to(desc_o.dtype).reshape([1, BLOCK_M, HEAD_DIM]))
    if RETURN_LSE:
        lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(tl.where(empty, 1.0, l_i))) * 0.6931471805599453)
        tl.store(Lse + batch.to(tl.int64) * stride_lb + head * stride_lh + offs_m, lse, mask=offs_m < seqlen_q)


_launcher = SpecializedLauncher(flash_attention_fwd_tma_kernel)
_CONSTEXPRS = ("HEAD_DIM", "BLOCK_M", "BLOCK_N", "IS_CAUSAL", "RETURN_LSE", "UPCAST_DOT", "TAIL", "GQA", "Q_IN_REGS")


def _describable(t: torch.Tensor) -> bool:
    """Whether [B, S, H, D] ``t`` can be viewed as [B, S, H * D] with 16-byte aligned strides."""
    # One stride() call per tensor: each costs about a microsecond of launcher time.
    size, stride = t.element_size(), t.stride()
    return (stride[2] == t.shape[3] and stride[3] == 1 and t.data_ptr() % 16 == 0
            and (stride[0] * size) % 16 == 0 and (stride[1] * size) % 16 == 0)


def tma_path_applies(target: Target, *tensors: torch.Tensor) -> bool:
    """Dense inputs for an sm90+ GPU (or the interpreter) whose layout a TMA descriptor can describe."""
    has_tma = target.backend == "interpreter" or (target.backend == "cuda" and int(target.arch[2:]) >= 90)
    if TensorDescriptor is None or not has_tma:
        return False
    return all(t.numel() > 0 and _describable(t) for t in tensors)


def _descriptor(t: torch.Tensor, block_rows: int) -> TensorDescriptor:
    batch, seqlen, heads, head_dim = t.shape
    stride = t.stride()
    return TensorDescriptor(t, [batch, seqlen, heads * head_dim], [stride[0], stride[1], 1],
                            [1, block_rows, head_dim])


def launch_tma(q, k, v, out, lse, lse_strides: tuple[int, int], group: int, qk_scale: float,
               causal: bool, constexprs: dict, options: dict) -> None:
    """Launch the TMA kernel on dense [B, S, H, D] tensors (``tma_path_applies`` holds)."""
    block_m, block_n, head_dim = constexprs["BLOCK_M"], constexprs["BLOCK_N"], constexprs["HEAD_DIM"]
    batch, seqlen_q, heads = q.shape[0], q.shape[1], q.shape[2]
    seqlen_k = k.shape[1]
    grid = (cdiv(seqlen_q, block_m), heads, batch)
    args = {"desc_q": _descriptor(q, block_m), "desc_k": _descriptor(k, block_n),
            "desc_v": _descriptor(v, block_n), "desc_o": _descriptor(out, block_m),
            "Lse": lse, "stride_lb": lse_strides[0], "stride_lh": lse_strides[1],
            "seqlen_q": seqlen_q, "seqlen_k": seqlen_k, "group_size": group, "qk_scale": qk_scale,
            "HEAD_DIM": head_dim, "BLOCK_M": block_m, "BLOCK_N": block_n, "IS_CAUSAL": causal,
            "RETURN_LSE": constexprs["RETURN_LSE"], "UPCAST_DOT": constexprs["UPCAST_DOT"],
            "TAIL": causal or seqlen_k % block_n != 0, "GQA": group > 1, "Q_IN_REGS": constexprs["Q_IN_REGS"]}
    # What Triton specializes on here: the dtypes, the descriptors' block shapes (constexprs),
    # the constexprs and options, the device. The integers are do_not_specialize; Lse is a
    # torch allocation of float32 (16-byte aligned) in every launch.
    key = (q.dtype, q.device, *(args[name] for name in _CONSTEXPRS), *sorted(options.items()))
    _launcher(key, grid, args, options)


def aot_specializations(target: Target, plan, dtypes, head_dims, has_tma, short_limit) -> list:
    """The dense launches ``launch_tma`` makes on ``target``, for the AOT build.

    ``plan``/``has_tma``/``short_limit`` are flash_attention's own config functions,
    passed in (that module imports this one), so the prebuilt variants are exactly
    the ones the launcher picks: both tile tiers, causal and not, with and
    without the masked tail (``TAIL``) and the GQA head division (``GQA``), no LSE.
    """
    from rocstack_kernels.aot import ExampleTensor
    from rocstack_kernels.registry import Specialization

    if TensorDescriptor is None or not (target.backend == "cuda" and int(target.arch[2:]) >= 90):
        return []
    specs = []
    for dtype in dtypes:
        for head_dim in head_dims:
            if not has_tma(target, head_dim):
                continue
            base, row = ExampleTensor(dtype), 16 * head_dim  # a [2, 4096, 16, D] tensor as [B, S, H*D]

            def describe(block_rows: int) -> TensorDescriptor:
                return TensorDescriptor(base, [2, 4096, row], [4096 * row, row, 1], [1, block_rows, head_dim])

            for causal in (False, True):
                limit = short_limit(target, head_dim, True, causal)
                for tier, tail, gqa in itertools.product((None,) if limit is None else (None, limit),
                                                         (True,) if causal else (True, False), (False, True)):
                    constexprs, options = plan(target, head_dim, dtype, causal, False, False, tier, None, True)
                    args = {"desc_q": describe(constexprs["BLOCK_M"]), "desc_k": describe(constexprs["BLOCK_N"]),
                            "desc_v": describe(constexprs["BLOCK_N"]), "desc_o": describe(constexprs["BLOCK_M"]),
                            "Lse": torch.float32, "stride_lb": 1000, "stride_lh": 17, "seqlen_q": 17,
                            "seqlen_k": 17, "group_size": 4 if gqa else 1, "qk_scale": 0.125,
                            "TAIL": tail, "GQA": gqa,
                            **{k: v for k, v in constexprs.items() if k in flash_attention_fwd_tma_kernel.arg_names}}
                    label = (f"{str(dtype)[6:]} d{head_dim} {'causal' if causal else 'full'} tma"
                             f"{' short' if tier else ''}{'' if tail else ' even'}{' gqa' if gqa else ''}")
                    specs.append(Specialization(flash_attention_fwd_tma_kernel, label, args, options))
    return specs
