"""Rotary position embedding applied in place to q and k, plus the cos/sin cache builder.

Layout as serving engines keep it: ``q`` [T, Hq, D] or [T, Hq*D], ``k`` [T, Hkv, D]
or [T, Hkv*D] (token stride free, so views into a fused qkv tensor work),
``positions`` [T] and ``cos_sin_cache`` [max_position, rot_dim] holding the cos half
then the sin half. The first ``rot_dim`` features of each head rotate:
``neox`` pairs feature i with i + rot_dim/2, ``gptj`` pairs 2i with 2i+1.

``build_cos_sin_cache`` makes the cache, optionally with Llama 3.1 frequency
scaling (wavelengths longer than ``original_max_position / low_freq_factor`` are
slowed by ``factor``, shorter than ``... / high_freq_factor`` kept, and the band
between interpolated smoothly).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from rocstack_kernels.checks import FLOAT_DTYPES, check_same_device, check_tensor
from rocstack_kernels.configs import (
    config_for,
    known_keys,
    launch_options,
    override_from_key,
    override_key,
    with_override,
)
from rocstack_kernels.launch import cdiv, next_power_of_2
from rocstack_kernels.registry import BenchCase, BenchSetup, KernelEntry, Specialization
from rocstack_kernels.target import Target, target_of

STYLES = ("neox", "gptj")


@triton.jit
def _rotate_heads(base, stride_t, stride_h, tokens, token_ok, first, n_heads, cos, sin, i, i_mask,
                  HALF: tl.constexpr, HEADS: tl.constexpr, GPTJ: tl.constexpr):
    """Rotate heads [first, first + HEADS) of TOKENS tokens: one [TOKENS, HEADS, BLOCK_HALF] tile per half."""
    heads = first + tl.arange(0, HEADS)
    mask = token_ok[:, None, None] & (heads < n_heads)[None, :, None] & i_mask[None, None, :]
    rows = base + tokens[:, None, None] * stride_t + heads[None, :, None] * stride_h
    if GPTJ:
        first_ptrs = rows + 2 * i[None, None, :]
        second_ptrs = first_ptrs + 1
    else:
        first_ptrs = rows + i[None, None, :]
        second_ptrs = first_ptrs + HALF
    x1 = tl.load(first_ptrs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(second_ptrs, mask=mask, other=0.0).to(tl.float32)
    c = cos[:, None, :]
    s = sin[:, None, :]
    tl.store(first_ptrs, (x1 * c - x2 * s).to(base.dtype.element_ty), mask=mask)
    tl.store(second_ptrs, (x2 * c + x1 * s).to(base.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["num_tokens", "q_heads", "k_heads"])
def _rotary_kernel(pos_ptr, q_ptr, k_ptr, cache_ptr, num_tokens, q_heads, k_heads,
                   stride_qt, stride_qh, stride_kt, stride_kh, stride_cache,
                   HALF: tl.constexpr, BLOCK_HALF: tl.constexpr, HEADS: tl.constexpr, GPTJ: tl.constexpr,
                   TOKENS: tl.constexpr = 1):
    # Axis 0 walks blocks of TOKENS tokens; axis 1 walks q's head blocks, then k's. Each
    # branch calls the helper with its own pointer: selecting between q_ptr and k_ptr
    # instead breaks AMD's pointer canonicalization. Several tokens per program give
    # short batches programs big enough to keep the memory system busy (one token x 8
    # heads moves 2 KiB each way).
    tokens = tl.program_id(0).to(tl.int64) * TOKENS + tl.arange(0, TOKENS)
    token_ok = tokens < num_tokens
    head_block = tl.program_id(1)
    pos = tl.load(pos_ptr + tokens, mask=token_ok, other=0).to(tl.int64)
    i = tl.arange(0, BLOCK_HALF)
    i_mask = i < HALF
    cs_mask = token_ok[:, None] & i_mask[None, :]
    cs_rows = cache_ptr + pos[:, None] * stride_cache + i[None, :]
    cos = tl.load(cs_rows, mask=cs_mask, other=0.0).to(tl.float32)
    sin = tl.load(cs_rows + HALF, mask=cs_mask, other=0.0).to(tl.float32)
    q_blocks = tl.cdiv(q_heads, HEADS)
    if head_block < q_blocks:
        _rotate_heads(q_ptr, stride_qt, stride_qh, tokens, token_ok, head_block * HEADS, q_heads, cos, sin,
                      i, i_mask, HALF, HEADS, GPTJ)
    else:
        _rotate_heads(k_ptr, stride_kt, stride_kh, tokens, token_ok, (head_block - q_blocks) * HEADS, k_heads,
                      cos, sin, i, i_mask, HALF, HEADS, GPTJ)


def _plan(target: Target, rot_dim: int, style: str, override: dict | None = None) -> tuple[dict, dict]:
    """Constexprs and compiler options of one launch (cached; callers must not modify them).

    ``override`` replaces keys of the arch's config (``heads_per_program``,
    ``tokens_per_program``, ``num_warps``): for tuning sweeps.
    """
    return _cached_plan(target, rot_dim, style, override_key(override))


@functools.lru_cache(maxsize=256)
def _cached_plan(target: Target, rot_dim: int, style: str, override: str | None) -> tuple[dict, dict]:
    config = with_override(config_for("rotary_embedding", target), override_from_key(override),
                           known_keys("rotary_embedding"), "rotary_embedding")
    half = rot_dim // 2
    constexprs = {"HALF": half, "BLOCK_HALF": next_power_of_2(half),
                  "HEADS": config["heads_per_program"], "GPTJ": style == "gptj",
                  "TOKENS": config["tokens_per_program"]}
    return constexprs, launch_options(config, target)


def _heads_view(name: str, tensor: torch.Tensor, head_size: int | None) -> torch.Tensor:
    """[T, H, D] view of q or k with heads contiguous in a token."""
    if tensor.dim() == 2:
        if head_size is None or head_size <= 0 or tensor.shape[1] % head_size:
            raise ValueError(f"{name} is 2-D {tuple(tensor.shape)}: pass head_size dividing its last dim")
        if tensor.stride(1) != 1:
            raise ValueError(f"{name} must be contiguous in its last dimension, got strides {tuple(tensor.stride())}")
        return tensor.view(tensor.shape[0], tensor.shape[1] // head_size, head_size) if tensor.is_contiguous() \
            else tensor.as_strided((tensor.shape[0], tensor.shape[1] // head_size, head_size),
                                   (tensor.stride(0), head_size, 1))
    if tensor.dim() != 3:
        raise ValueError(f"{name} must be [tokens, heads, head_size] or [tokens, heads*head_size], "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.stride(2) != 1 or (tensor.shape[1] > 1 and tensor.stride(1) != tensor.shape[2]):
        raise ValueError(f"{name} must have contiguous heads (strides [*, head_size, 1]), got {tuple(tensor.stride())}")
    return tensor


def rotary_embedding(positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor, cos_sin_cache: torch.Tensor,
                     style: str = "neox", head_size: int | None = None,
                     config: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate ``q`` and ``k`` in place by their tokens' positions; returns ``(q, k)``.

    ``config`` overrides keys of the per-arch launch config; it exists for tuning sweeps.
    """
    if style not in STYLES:
        raise ValueError(f"style must be 'neox' or 'gptj', got {style!r}")
    check_tensor("positions", positions, dtypes=(torch.int64, torch.int32), ndim=1, contiguous=True)
    check_tensor("q", q, dtypes=FLOAT_DTYPES, ndim=(2, 3))
    check_tensor("k", k, dtypes=(q.dtype,), ndim=(2, 3))
    check_tensor("cos_sin_cache", cos_sin_cache, dtypes=FLOAT_DTYPES, ndim=2, contiguous=True)
    q3 = _heads_view("q", q, head_size)
    k3 = _heads_view("k", k, head_size if head_size is not None else q3.shape[2])
    tokens, d = q3.shape[0], q3.shape[2]
    if k3.shape[0] != tokens or positions.shape[0] != tokens:
        raise ValueError(f"positions ({positions.shape[0]}), q ({q3.shape[0]}) and k ({k3.shape[0]}) "
                         f"must have the same number of tokens")
    if k3.shape[2] != d:
        raise ValueError(f"k has head_size {k3.shape[2]} but q has {d}")
    rot_dim = cos_sin_cache.shape[1]
    if rot_dim % 2 or rot_dim == 0 or rot_dim > d:
        raise ValueError(f"cos_sin_cache has {rot_dim} columns; need an even rot_dim <= head_size {d}")
    check_same_device(positions=positions, q=q, k=k, cos_sin_cache=cos_sin_cache)
    if tokens == 0:
        return q, k
    constexprs, options = _plan(target_of(q.device), rot_dim, style, config)
    heads = constexprs["HEADS"]
    grid = (cdiv(tokens, constexprs["TOKENS"]), cdiv(q3.shape[1], heads) + cdiv(k3.shape[1], heads))
    _rotary_kernel[grid](positions, q3, k3, cos_sin_cache, tokens, q3.shape[1], k3.shape[1],
                         q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), cos_sin_cache.stride(0),
                         **constexprs, **options)
    return q, k


@dataclass(frozen=True)
class Llama3Scaling:
    """Llama 3.1's ``rope_scaling`` block (``rope_type: llama3``)."""

    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position: int = 8192


def inverse_frequencies(rot_dim: int, base: float, scaling: Llama3Scaling | None = None) -> torch.Tensor:
    """Per-pair rotation frequencies (float64), with Llama 3.1 scaling when given."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dim, 2, dtype=torch.float64) / rot_dim))
    if scaling is None:
        return inv_freq
    wavelen = 2 * math.pi / inv_freq
    low_freq_wavelen = scaling.original_max_position / scaling.low_freq_factor
    high_freq_wavelen = scaling.original_max_position / scaling.high_freq_factor
    smooth = (scaling.original_max_position / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor)
    blended = (1 - smooth) * inv_freq / scaling.factor + smooth * inv_freq
    return torch.where(wavelen < high_freq_wavelen, inv_freq,
                       torch.where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, blended))


def build_cos_sin_cache(rot_dim: int, max_position: int, base: float = 10000.0,
                        scaling: Llama3Scaling | None = None, dtype: torch.dtype = torch.float32,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """[max_position, rot_dim] cache: cos of every (position, pair) then sin."""
    if rot_dim <= 0 or rot_dim % 2:
        raise ValueError(f"rot_dim must be a positive even number, got {rot_dim}")
    if max_position <= 0:
        raise ValueError(f"max_position must be positive, got {max_position}")
    angles = torch.outer(torch.arange(max_position, dtype=torch.float64), inverse_frequencies(rot_dim, base, scaling))
    return torch.cat([angles.cos(), angles.sin()], dim=-1).to(dtype=dtype, device=device)


def rotary_torch(positions, q, k, cos_sin_cache, style="neox", head_size=None, compute_dtype=torch.float32):
    """Out-of-place rotary in torch; float64 compute gives the reference. Returns ``(q, k)``."""
    def rotate(x):
        shape = x.shape
        d = head_size or shape[-1]
        x = x.reshape(shape[0], -1, d).to(compute_dtype)
        half = cos_sin_cache.shape[1] // 2
        cos = cos_sin_cache[positions, :half].to(compute_dtype)[:, None, :]
        sin = cos_sin_cache[positions, half:].to(compute_dtype)[:, None, :]
        rot, rest = x[..., :2 * half], x[..., 2 * half:]
        if style == "gptj":
            x1, x2 = rot[..., 0::2], rot[..., 1::2]
            rotated = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
        else:
            x1, x2 = rot[..., :half], rot[..., half:]
            rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
        return torch.cat([rotated, rest], dim=-1).reshape(shape)
    return rotate(q), rotate(k)


def _specializations(target: Target) -> list[Specialization]:
    specs = []
    for dtype in (torch.bfloat16, torch.float16):
        for d in (64, 128):
            for style in STYLES:
                constexprs, options = _plan(target, d, style)
                args = {"pos_ptr": torch.int64, "q_ptr": dtype, "k_ptr": dtype, "cache_ptr": torch.float32,
                        "num_tokens": 4096, "q_heads": 32, "k_heads": 8, "stride_qt": 32 * d, "stride_qh": d,
                        "stride_kt": 8 * d, "stride_kh": d, "stride_cache": d, **constexprs}
                specs.append(Specialization(_rotary_kernel, f"{str(dtype)[6:]} d{d} {style}", args, options))
    return specs


@functools.cache
def _compiled():
    return torch.compile(rotary_torch, dynamic=False)


def _bench(tokens: int, q_heads: int, k_heads: int, d: int, graph: bool = False) -> BenchCase:
    """Eager, or with ``graph`` every implementation replayed from a CUDA graph (GPU time only)."""
    def setup(device) -> BenchSetup:
        from rocstack_kernels.graph_replay import GraphReplay

        wrap = GraphReplay if graph else (lambda fn: fn)
        q = torch.randn(tokens, q_heads, d, device=device, dtype=torch.bfloat16)
        k = torch.randn(tokens, k_heads, d, device=device, dtype=torch.bfloat16)
        cache = build_cos_sin_cache(d, 131072, 500000.0, Llama3Scaling(), device=device)
        positions = torch.randint(0, 131072, (tokens,), device=device)
        moved = 2 * (q.numel() + k.numel()) * q.element_size() + tokens * (8 + d * 4)
        return BenchSetup(run=wrap(lambda: rotary_embedding(positions, q, k, cache)), ceiling="copy",
                          bytes_moved=moved,
                          peers={"torch eager": wrap(lambda: rotary_torch(positions, q, k, cache)),
                                 "torch.compile": wrap(lambda: _compiled()(positions, q, k, cache))},
                          variant=lambda config: wrap(lambda: rotary_embedding(positions, q, k, cache, config=config)))
    return BenchCase(f"{tokens} tok {q_heads}q/{k_heads}kv d{d} bf16{' graph' if graph else ''}", setup)


KERNELS = (
    KernelEntry("rotary_embedding", _specializations,
                lambda: [_bench(16384, 32, 8, 128), _bench(4096, 32, 8, 128), _bench(4096, 32, 8, 128, graph=True)],
                "rotary position embedding, in place, neox or gptj pairing"),
)
