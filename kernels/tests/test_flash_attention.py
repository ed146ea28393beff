"""flash_attention against a float64 naive-SDPA reference.

Without a GPU the small cases run through Triton's interpreter (conftest sets
TRITON_INTERPRET=1); the ``gpu``-marked matrix covers S = 1, 17, 1000, 4097, GQA
ratios 1/4/7, head dims 64/128/256, both dtypes, causal and not. Dense hd128
launches run the TMA kernel (on sm90+ GPUs and in the interpreter, which has a
``tma`` config for hd128 as Hopper does); the other head dims and packed
batches run the pointer kernel, so both kernels are held to the reference.
"""

from __future__ import annotations

import math


import pytest
import torch

from rocstack_kernels.attention import flash_attention, flash_attention_reference
from rocstack_kernels.attention.configs import prefill_has_tma
from rocstack_kernels.attention.flash_attention_tma import tma_path_applies
from rocstack_kernels.target import target_of
from rocstack_kernels.testing import TOLERANCE, assert_errors_name_their_argument, poisoned, rel_err
from attention_resources import assert_builds_without_spills

LSE_ATOL = 1e-3  # lse comes from float32 scores of the same rounded inputs: no bf16 rounding in it


def _dense(batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, dtype, device):
    q = torch.randn(batch, seqlen_q, heads_q, head_dim, dtype=dtype, device=device)
    k = torch.randn(batch, seqlen_k, heads_kv, head_dim, dtype=dtype, device=device)
    v = torch.randn(batch, seqlen_k, heads_kv, head_dim, dtype=dtype, device=device)
    return q, k, v


def _check(out, lse, ref_out, ref_lse, dtype):
    assert torch.isfinite(out).all(), "output has unwritten (NaN-poisoned) or non-finite elements"
    err = rel_err(out, ref_out)
    assert err < TOLERANCE[dtype], f"relative error {err:.2e} >= {TOLERANCE[dtype]:.0e}"
    ref_lse = ref_lse.to(lse.device)
    masked = torch.isinf(ref_lse)
    assert torch.equal(torch.isinf(lse), masked) and (lse[masked] < 0).all(), "lse must be -inf exactly on fully masked rows"
    if (~masked).any():
        gap = (lse[~masked].double() - ref_lse[~masked]).abs().max().item()
        assert gap < LSE_ATOL, f"lse off by {gap:.2e}"


def _run_dense(batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, causal, dtype, device):
    q, k, v = _dense(batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, dtype, device)
    out = poisoned(q.shape, dtype, device)
    got, lse = flash_attention(q, k, v, causal, return_lse=True, out=out)
    assert got is out
    ref_out, ref_lse = flash_attention_reference(q, k, v, causal)
    _check(out, lse, ref_out, ref_lse, dtype)
    return out, lse


# (batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, causal, dtype): small enough for the interpreter.
SMALL_CASES = [
    (2, 17, 17, 4, 4, 64, False, torch.float16),     # MHA, odd length, several blocks + ragged tail
    (1, 17, 17, 7, 1, 64, True, torch.bfloat16),     # MQA / GQA 7, causal
    (2, 1, 1, 4, 1, 64, True, torch.float16),        # S = 1
    (1, 20, 45, 8, 2, 128, True, torch.bfloat16),    # chunked prefill: causal mask aligned to the end
    (1, 40, 9, 2, 2, 64, True, torch.float16),       # seqlen_q > seqlen_k: first rows fully masked
    (1, 33, 33, 4, 1, 256, False, torch.bfloat16),   # head dim 256
    # hd128 dense runs the TMA kernel: ragged tail past the last full tile, GQA, rows with no key.
    (2, 17, 17, 4, 2, 128, False, torch.float16),
    (1, 40, 9, 2, 2, 128, True, torch.bfloat16),
    # ... and non-causal with seqlen_k a multiple of the tile: the variants without the masked
    # loop, with GQA and with one KV head per query head (no head division).
    (2, 32, 32, 4, 2, 128, False, torch.bfloat16),
    (1, 48, 48, 3, 3, 128, False, torch.float16),
]


@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda c: "-".join(str(x).replace("torch.", "") for x in c))
def test_dense_matches_reference(case, device):
    _run_dense(*case[:6], case[6], case[7], device)


def test_fully_masked_rows_are_zero_with_lse_minus_inf(device):
    # seqlen_q 12 > seqlen_k 5, causal: rows 0..6 see no key (i + 5 - 12 < 0).
    out, lse = _run_dense(1, 12, 5, 2, 1, 64, True, torch.float16, device)
    assert (out[0, :7] == 0).all()
    assert torch.isneginf(lse[0, :, :7]).all() and torch.isfinite(lse[0, :, 7:]).all()


def test_empty_key_sequence_gives_zeros(device):
    q, k, v = _dense(1, 3, 0, 2, 2, 64, torch.float16, device)
    out, lse = flash_attention(q, k, v, False, return_lse=True, out=poisoned(q.shape, q.dtype, device))
    assert (out == 0).all() and torch.isneginf(lse).all()


def _varlen(lens_q, lens_k, heads_q, heads_kv, head_dim, dtype, device):
    cu_q = torch.tensor([0] + list(torch.tensor(lens_q).cumsum(0)), dtype=torch.int32, device=device)
    cu_k = torch.tensor([0] + list(torch.tensor(lens_k).cumsum(0)), dtype=torch.int32, device=device)
    q = torch.randn(sum(lens_q), heads_q, head_dim, dtype=dtype, device=device)
    k = torch.randn(sum(lens_k), heads_kv, head_dim, dtype=dtype, device=device)
    v = torch.randn(sum(lens_k), heads_kv, head_dim, dtype=dtype, device=device)
    return q, k, v, cu_q, cu_k


def _run_varlen(lens_q, lens_k, heads_q, heads_kv, head_dim, causal, dtype, device):
    q, k, v, cu_q, cu_k = _varlen(lens_q, lens_k, heads_q, heads_kv, head_dim, dtype, device)
    out = poisoned(q.shape, dtype, device)
    _, lse = flash_attention(q, k, v, causal, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, return_lse=True, out=out)
    assert lse.shape == (heads_q, q.shape[0])
    ref_out, ref_lse = flash_attention_reference(q, k, v, causal, cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)
    _check(out, lse, ref_out, ref_lse, dtype)


@pytest.mark.parametrize("causal", [False, True])
def test_varlen_with_empty_sequences(causal, device):
    # Empty query sequence, empty key sequence (its query rows fully masked), q_len != k_len.
    _run_varlen([5, 0, 17, 1, 3], [5, 3, 20, 0, 3], 4, 1, 64, causal, torch.bfloat16, device)


def test_softmax_scale_is_applied(device):
    q, k, v = _dense(1, 17, 17, 2, 2, 64, torch.float16, device)
    out = flash_attention(q, k, v, False, softmax_scale=0.3)
    ref, _ = flash_attention_reference(q, k, v, False, softmax_scale=0.3)
    assert rel_err(out, ref) < TOLERANCE[torch.float16]
    assert rel_err(out, flash_attention_reference(q, k, v, False)[0]) > 10 * TOLERANCE[torch.float16]


def test_strided_q_from_fused_qkv(device):
    # q/k/v as views of one packed projection: strided rows, contiguous head_dim.
    qkv = torch.randn(2, 17, 4 + 2 + 2, 64, dtype=torch.float16, device=device)
    q, k, v = qkv[:, :, :4], qkv[:, :, 4:6], qkv[:, :, 6:]
    out = flash_attention(q, k, v, True)
    ref, _ = flash_attention_reference(q, k, v, True)
    assert rel_err(out, ref) < TOLERANCE[torch.float16]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_tma_and_pointer_kernels_agree_on_fused_qkv_views(causal, device):
    # Strided rows (a packed projection) through the TMA descriptors, and the same
    # call forced onto the pointer kernel: both against the reference.
    qkv = torch.randn(2, 33, 4 + 1 + 1, 128, dtype=torch.bfloat16, device=device)
    q, k, v = qkv[:, :, :4], qkv[:, :, 4:5], qkv[:, :, 5:]
    ref, _ = flash_attention_reference(q, k, v, causal)
    # Q_IN_REGS: the TMA kernel with the Q tile kept in registers (Hopper's short tier).
    for config in ({"TMA": True}, {"TMA": True, "Q_IN_REGS": True}, {"TMA": False}):
        out = flash_attention(q, k, v, causal, out=poisoned(q.shape, q.dtype, device), config=config)
        assert rel_err(out, ref) < TOLERANCE[torch.bfloat16], f"config={config}"


@pytest.mark.gpu
def test_gpu_dense_hd128_takes_the_tma_kernel_on_hopper(device):
    # The benchmarks time the TMA kernel on sm90+; a layout or config change that
    # silently sent hd128 back to the pointer kernel would fail here.
    if torch.cuda.get_device_capability(device)[0] < 9:
        pytest.skip("TMA kernel needs sm90+")
    target = target_of(device)
    q, k, v = _dense(2, 1000, 1000, 8, 2, 128, torch.bfloat16, device)
    assert prefill_has_tma(target, 128) and tma_path_applies(target, q, k, v, torch.empty_like(q))


def _bad_inputs(device):
    q, k, v = _dense(1, 4, 4, 4, 2, 64, torch.float16, device)
    cu = torch.tensor([0, 4], dtype=torch.int32, device=device)
    flat = q[0], k[0], v[0]
    return [
        ("q", lambda: flash_attention(q.float(), k, v, False)),
        ("v", lambda: flash_attention(q, k, v.bfloat16(), False)),
        ("q", lambda: flash_attention(q[..., :48].contiguous(), k[..., :48].contiguous(),
                                      v[..., :48].contiguous(), False)),
        ("k", lambda: flash_attention(q[:, :, :3], k, v, False)),
        ("q", lambda: flash_attention(q[0], k, v, False)),
        ("q", lambda: flash_attention(q.transpose(-1, -2).contiguous().transpose(-1, -2), k, v, False)),
        ("v", lambda: flash_attention(q, k, v[:, :3], False)),
        ("cu_seqlens_k", lambda: flash_attention(*flat, False, cu_seqlens_q=cu)),
        ("cu_seqlens_q", lambda: flash_attention(*flat, False, cu_seqlens_q=cu.long(), cu_seqlens_k=cu)),
        ("cu_seqlens_q", lambda: flash_attention(*flat, False, cu_seqlens_q=torch.tensor(
            [0, 3], dtype=torch.int32, device=device), cu_seqlens_k=cu)),
        ("cu_seqlens_k", lambda: flash_attention(*flat, False, cu_seqlens_q=cu, cu_seqlens_k=torch.tensor(
            [0, 5, 4], dtype=torch.int32, device=device))),
        ("softmax_scale", lambda: flash_attention(q, k, v, False, softmax_scale=-1.0)),
        ("softmax_scale", lambda: flash_attention(q, k, v, False, softmax_scale=math.nan)),
        ("out", lambda: flash_attention(q, k, v, False, out=torch.empty_like(q[:, :2]))),
        ("k", lambda: flash_attention(q, k.to("meta"), v, False)),
        ("q", lambda: flash_attention([1.0], k, v, False)),
        ("config", lambda: flash_attention(q, k, v, False, config={"BLOK_M": 64})),  # misspelt knob
        ("config", lambda: flash_attention(q, k, v, False, config={"Q_IN_REGS": True})),  # TMA kernel's only; hd64
    ]


def test_bad_input_raises_value_error_naming_the_argument(device):
    assert_errors_name_their_argument(_bad_inputs(device))


# --- the full matrix on a GPU ---------------------------------------------------------------

GQA = [(4, 4), (8, 2), (7, 1)]  # ratios 1, 4, 7


@pytest.mark.gpu
@pytest.mark.parametrize("seqlen", [1, 17, 1000, 1024, 4097])  # 1024: no ragged tail
@pytest.mark.parametrize("heads", GQA, ids=lambda h: f"{h[0]}q{h[1]}kv")
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype, head_dim", [(torch.bfloat16, 64), (torch.bfloat16, 128), (torch.float16, 128),
                                             (torch.bfloat16, 256)], ids=lambda x: str(x).replace("torch.", ""))
def test_gpu_matrix(seqlen, heads, causal, dtype, head_dim, device):
    _run_dense(2, seqlen, seqlen, heads[0], heads[1], head_dim, causal, dtype, device)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_gpu_varlen_and_chunked(causal, head_dim, device):
    _run_varlen([1, 17, 1000, 0, 4097, 300], [1, 17, 1500, 64, 4097, 0], 8, 2, head_dim, causal,
                torch.bfloat16, device)


@pytest.mark.slow
def test_gfx942_hd128_builds_without_spills(tmp_path):
    assert_builds_without_spills(tmp_path, "flash_attention", expected_variants=12)
