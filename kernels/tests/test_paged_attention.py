"""paged_attention_decode against float64 attention over the gathered pages.

Without a GPU the small cases run through Triton's interpreter; the ``gpu``
matrix covers odd and long contexts (1, 17, 1000, 4097, 32768), GQA ratios
1/4/7, page sizes 1/16/32, head dims 64/128/256, both dtypes.
"""

from __future__ import annotations


import pytest
import torch

from rocstack_kernels.attention import paged_attention_decode, paged_attention_reference
from rocstack_kernels.attention.bench import paged_inputs
from rocstack_kernels.testing import TOLERANCE, assert_errors_name_their_argument, poisoned, rel_err
from attention_resources import assert_builds_without_spills


def _run(seq_lens, q_heads, kv_heads, head_dim, page_size, dtype, device, num_splits=None, fused_merge=None,
         block_n=None):
    q, k_cache, v_cache, tables, lens = paged_inputs(seq_lens, q_heads, kv_heads, head_dim, page_size,
                                                     device, dtype)
    # Unused table slots hold garbage page ids: the kernel must never read them.
    tables.masked_fill_(torch.arange(tables.shape[1], device=device)[None, :] * page_size >= lens[:, None],
                        k_cache.shape[0] + 12345)
    out = poisoned(q.shape, dtype, device)
    config = {"num_splits": num_splits} if num_splits else {}
    if fused_merge is not None:
        config["fused_merge"] = fused_merge
    if block_n is not None:
        config["BLOCK_N"] = block_n
    assert paged_attention_decode(q, k_cache, v_cache, tables, lens, out=out, config=config or None) is out
    ref = paged_attention_reference(q, k_cache, v_cache, tables, lens)
    assert torch.isfinite(out).all(), "output has unwritten (NaN-poisoned) elements"
    err = rel_err(out, ref)
    assert err < TOLERANCE[dtype], f"relative error {err:.2e} >= {TOLERANCE[dtype]:.0e}"
    empty = lens == 0
    assert (out[empty] == 0).all(), "an empty sequence must give zeros"
    return out


# (seq_lens, q_heads, kv_heads, head_dim, page_size, dtype, num_splits)
SMALL_CASES = [
    ([5, 0, 37], 4, 1, 64, 16, torch.float16, None),      # GQA 4, empty sequence inside, auto split
    ([1, 33], 7, 1, 64, 8, torch.bfloat16, 1),            # GQA 7, one program per sequence
    ([1, 33], 2, 2, 64, 16, torch.float16, 3),            # MHA, forced split incl. splits past the end
    ([0, 0], 4, 2, 64, 16, torch.bfloat16, 2),            # every sequence empty
    ([50], 8, 2, 128, 32, torch.bfloat16, 4),             # page larger than a loop step
]


@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda c: "-".join(str(x).replace("torch.", "") for x in c))
def test_decode_matches_reference(case, device):
    _run(*case[:6], device, num_splits=case[6])


@pytest.mark.parametrize("fused_merge", [False, True])
@pytest.mark.parametrize("case", SMALL_CASES, ids=lambda c: "-".join(str(x).replace("torch.", "") for x in c))
def test_split_merge_by_kernel_or_by_the_last_split(case, fused_merge, device):
    """Both merges give the reference; the fused one leaves its counters at zero for the next launch.

    16 tokens per loop step on every backend, so these short sequences split as asked.
    """
    _run(*case[:6], device, num_splits=case[6] or 3, fused_merge=fused_merge, block_n=16)
    # Sequences of at most one 16-token step give one split whatever is asked: no merge,
    # so no counters (whether some existed depended on which tests ran before, under -n 8).
    if fused_merge and case[6] != 1 and max(case[0]) > 16:
        assert_counters_zero(device)
        _run(*case[:6], device, num_splits=case[6] or 3, fused_merge=True, block_n=16)  # on the same counters


def assert_counters_zero(device):
    from rocstack_kernels.attention import paged_attention as pa

    counters = [c for d, c in pa._COUNTERS.items() if d.type == torch.device(device).type]
    assert counters, "the fused merge kept no counters for this device"
    assert all(int(c.abs().sum()) == 0 for c in counters), "the fused merge left a counter set"


def test_split_and_unsplit_agree(device):
    q, k_cache, v_cache, tables, lens = paged_inputs([40, 7], 4, 2, 64, 16, device, torch.float16)
    one = paged_attention_decode(q, k_cache, v_cache, tables, lens, config={"num_splits": 1})
    three = paged_attention_decode(q, k_cache, v_cache, tables, lens, config={"num_splits": 3})
    assert rel_err(three, one.double()) < TOLERANCE[torch.float16]


def test_softmax_scale_is_applied(device):
    q, k_cache, v_cache, tables, lens = paged_inputs([20], 2, 2, 64, 16, device, torch.float16)
    out = paged_attention_decode(q, k_cache, v_cache, tables, lens, softmax_scale=0.05)
    ref = paged_attention_reference(q, k_cache, v_cache, tables, lens, softmax_scale=0.05)
    assert rel_err(out, ref) < TOLERANCE[torch.float16]


def _bad_inputs(device):
    q, k, v, tables, lens = paged_inputs([20, 3], 4, 2, 64, 16, device, torch.float16)
    return [
        ("q", lambda: paged_attention_decode(q.float(), k, v, tables, lens)),
        ("v_cache", lambda: paged_attention_decode(q, k, v.bfloat16(), tables, lens)),
        ("q", lambda: paged_attention_decode(q.unsqueeze(1), k, v, tables, lens)),
        ("k_cache", lambda: paged_attention_decode(q, k[0], v, tables, lens)),
        ("v_cache", lambda: paged_attention_decode(q, k, v[:, :8], tables, lens)),
        ("k_cache", lambda: paged_attention_decode(q, k[:, :, :1].expand(-1, -1, 3, -1), v[:, :, :1].expand(
            -1, -1, 3, -1), tables, lens)),
        ("q", lambda: paged_attention_decode(q[..., :32].contiguous(), k[..., :32].contiguous(),
                                             v[..., :32].contiguous(), tables, lens)),
        ("block_tables", lambda: paged_attention_decode(q, k, v, tables.long(), lens)),
        ("block_tables", lambda: paged_attention_decode(q, k, v, tables[:1], lens)),
        ("seq_lens", lambda: paged_attention_decode(q, k, v, tables, lens[:1])),
        ("seq_lens", lambda: paged_attention_decode(q, k, v, tables, lens.float())),
        ("softmax_scale", lambda: paged_attention_decode(q, k, v, tables, lens, softmax_scale=0)),
        ("out", lambda: paged_attention_decode(q, k, v, tables, lens, out=torch.empty_like(q).bfloat16())),
        ("k_cache", lambda: paged_attention_decode(q, k.to("meta"), v, tables, lens)),
        ("config", lambda: paged_attention_decode(q, k, v, tables, lens, config={"num_split": 2})),  # misspelt
    ]


def test_bad_input_raises_value_error_naming_the_argument(device):
    assert_errors_name_their_argument(_bad_inputs(device))


# --- the full matrix on a GPU ---------------------------------------------------------------

GQA = [(8, 8), (16, 4), (7, 1)]  # ratios 1, 4, 7


@pytest.mark.gpu
@pytest.mark.parametrize("heads", GQA, ids=lambda h: f"{h[0]}q{h[1]}kv")
@pytest.mark.parametrize("page_size", [16, 32, 1])
@pytest.mark.parametrize("dtype, head_dim", [(torch.bfloat16, 128), (torch.float16, 64), (torch.bfloat16, 256)],
                         ids=lambda x: str(x).replace("torch.", ""))
def test_gpu_ragged_batch(heads, page_size, dtype, head_dim, device):
    _run([1, 17, 1000, 0, 4097, 256], heads[0], heads[1], head_dim, page_size, dtype, device)


@pytest.mark.gpu
@pytest.mark.parametrize("fused_merge", [None, False, True], ids=["arch-config", "merge-kernel", "fused-merge"])
@pytest.mark.parametrize("heads", GQA, ids=lambda h: f"{h[0]}q{h[1]}kv")
def test_gpu_long_context_small_batch_splits(heads, fused_merge, device):
    # Batch 1 over 32k tokens: the launcher splits the context and merges with LSE.
    for _ in range(3):  # repeated launches reuse the fused merge's counters
        _run([32768], heads[0], heads[1], 128, 16, torch.bfloat16, device, fused_merge=fused_merge)
    _run([32768, 5], heads[0], heads[1], 128, 16, torch.bfloat16, device, num_splits=64, fused_merge=fused_merge)
    _run([8192] * 8, heads[0], heads[1], 128, 16, torch.bfloat16, device, fused_merge=fused_merge)
    if fused_merge:
        assert_counters_zero(device)


@pytest.mark.gpu
def test_gpu_large_batch(device):
    _run([4096] * 64, 32, 8, 128, 16, torch.bfloat16, device)


@pytest.mark.slow
def test_gfx942_hd128_builds_without_spills(tmp_path):
    assert_builds_without_spills(tmp_path, "paged_attention_decode", expected_variants=6)
