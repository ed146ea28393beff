import math

import pytest
import torch

from rocstack_kernels import Llama3Scaling, build_cos_sin_cache, rotary_embedding
from rocstack_kernels.rotary import inverse_frequencies, rotary_torch
from rocstack_kernels.testing import TOLERANCE, rel_err

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check(tokens, q_heads, k_heads, d, rot, style, dtype, device, flat_k=False):
    cache = build_cos_sin_cache(rot, 4096, 500000.0, Llama3Scaling(), device=device)
    positions = torch.randint(0, 4096, (tokens,), device=device)
    q = torch.randn(tokens, q_heads, d, dtype=dtype, device=device)
    k = torch.randn(tokens, k_heads * d if flat_k else k_heads, *(() if flat_k else (d,)), dtype=dtype, device=device)
    ref_q, ref_k = rotary_torch(positions, q.double(), k.double(), cache.double(), style, d, torch.float64)
    got_q, got_k = rotary_embedding(positions, q, k, cache, style, head_size=d)
    assert got_q is q and got_k is k  # in place
    assert rel_err(q, ref_q) < TOLERANCE[dtype]
    assert rel_err(k, ref_k) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("style", ["neox", "gptj"])
@pytest.mark.parametrize("tokens, q_heads, k_heads, d, rot", [(1, 4, 1, 16, 16), (5, 3, 2, 32, 32), (3, 2, 1, 16, 12)])
def test_rotary_small(tokens, q_heads, k_heads, d, rot, style, dtype, device):
    _check(tokens, q_heads, k_heads, d, rot, style, dtype, device, flat_k=tokens == 5)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("style", ["neox", "gptj"])
@pytest.mark.parametrize("tokens, q_heads, k_heads, d, rot",
                         [(16384, 32, 8, 128, 128), (1, 32, 8, 128, 128), (777, 28, 4, 128, 64), (33, 12, 12, 80, 80)])
def test_rotary_large(tokens, q_heads, k_heads, d, rot, style, dtype, device):
    _check(tokens, q_heads, k_heads, d, rot, style, dtype, device)


@pytest.mark.parametrize("config", [{"tokens_per_program": 1, "heads_per_program": 1},
                                    {"tokens_per_program": 4, "heads_per_program": 4},
                                    {"tokens_per_program": 8, "heads_per_program": 2}], ids=str)
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_rotary_launch_configs_agree(config, style, device):
    """Every tile shape of the sweep (tokens x heads per program) rotates like the reference,
    including partial token and head blocks (7 tokens, 5 q heads, 3 kv heads)."""
    cache = build_cos_sin_cache(32, 64, device=device)
    positions = torch.randint(0, 64, (7,), device=device)
    q = torch.randn(7, 5, 32, device=device)
    k = torch.randn(7, 3, 32, device=device)
    ref_q, ref_k = rotary_torch(positions, q.double(), k.double(), cache.double(), style, 32, torch.float64)
    rotary_embedding(positions, q, k, cache, style, config=config)
    assert rel_err(q, ref_q) < 1e-5 and rel_err(k, ref_k) < 1e-5


def test_rotary_on_views_of_fused_qkv(device):
    qkv = torch.randn(6, (4 + 2 + 2) * 16, device=device)
    q, k = qkv[:, :64], qkv[:, 64:96]
    cache = build_cos_sin_cache(16, 32, device=device)
    positions = torch.arange(6, device=device)
    ref_q, ref_k = rotary_torch(positions, q.double(), k.double(), cache.double(), "neox", 16, torch.float64)
    v_before = qkv[:, 96:].clone()
    rotary_embedding(positions, q, k, cache, head_size=16)
    assert rel_err(qkv[:, :64], ref_q) < 1e-5 and rel_err(qkv[:, 64:96], ref_k) < 1e-5
    assert torch.equal(qkv[:, 96:], v_before)  # v untouched


def test_llama31_scaling_keeps_high_and_slows_low_frequencies():
    scaling = Llama3Scaling(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position=8192)
    plain = inverse_frequencies(128, 500000.0)
    scaled = inverse_frequencies(128, 500000.0, scaling)
    wavelen = 2 * math.pi / plain
    high = wavelen < 8192 / 4
    low = wavelen > 8192 / 1
    assert high.any() and low.any() and (~high & ~low).any()
    assert torch.equal(scaled[high], plain[high])
    assert torch.allclose(scaled[low], plain[low] / 8)
    middle = ~high & ~low
    assert ((scaled[middle] < plain[middle]) & (scaled[middle] > plain[middle] / 8)).all()
    # the cache is cos then sin of position * frequency
    cache = build_cos_sin_cache(128, 10, 500000.0, scaling, dtype=torch.float64)
    assert torch.allclose(cache[7, :64], torch.cos(7 * scaled)) and torch.allclose(cache[7, 64:], torch.sin(7 * scaled))


@pytest.mark.parametrize("call, match", [
    (lambda d, c: rotary_embedding(torch.arange(2, device=d), torch.ones(2, 2, 16, device=d),
                                   torch.ones(2, 1, 16, device=d), c, style="llama"), "style"),
    (lambda d, c: rotary_embedding(torch.arange(3, device=d), torch.ones(2, 2, 16, device=d),
                                   torch.ones(2, 1, 16, device=d), c), "same number of tokens"),
    (lambda d, c: rotary_embedding(torch.arange(2, device=d).float(), torch.ones(2, 2, 16, device=d),
                                   torch.ones(2, 1, 16, device=d), c), "positions has dtype"),
    (lambda d, c: rotary_embedding(torch.arange(2, device=d), torch.ones(2, 32, device=d),
                                   torch.ones(2, 16, device=d), c), "head_size"),
    (lambda d, c: rotary_embedding(torch.arange(2, device=d), torch.ones(2, 2, 8, device=d),
                                   torch.ones(2, 1, 8, device=d), c), "rot_dim"),
    (lambda d, c: rotary_embedding(torch.arange(2, device=d), torch.ones(2, 2, 16, device=d),
                                   torch.ones(2, 1, 16, dtype=torch.float16, device=d), c), "k has dtype"),
])
def test_bad_input_names_the_argument(call, match, device):
    with pytest.raises(ValueError, match=match):
        call(device, build_cos_sin_cache(16, 8, device=device))
