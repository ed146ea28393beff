"""Per-arch launch configs of the attention kernels, as data.

Same fallback order as the package's ``data/configs.json`` (see
``rocstack_kernels.configs``): ``default``, overridden key by key by the
target's backend (``hip``/``cuda``), then its family (``cdna3``, ``hopper``,
...), then its exact arch (``gfx950``, ``sm90``). Prefill configs are keyed by
head dim inside each level, because the tile that fits depends on it.
The tables live here rather than in ``data/configs.json`` because that file's
levels are flat and these are per head dim.

Why these values:
* NVIDIA: BLOCK_M 128 so each program issues large wgmma/mma tiles; 3 pipeline
  stages hide the K/V loads (cp.async) behind the two dots.
* AMD: ``num_stages`` 1 for fused attention (pipelining two dots in one loop
  costs LDS and VGPRs there), ``waves_per_eu`` 2 as occupancy hint,
  ``matrix_instr_nonkdim`` 16 (usually beats 32 on CDNA3), ``kpack`` 2 on
  CDNA3 and 1 on gfx950 (required there) and CDNA2. Head dim 256 uses smaller
  tiles so K/V fit in 64 KiB of LDS (gfx950 has 160 KiB).
* interpreter (TRITON_INTERPRET=1): tiny tiles so the CPU interpreter stays
  fast and every path - several KV blocks, masked and unmasked - still runs.
"""

from __future__ import annotations

from rocstack_kernels.configs import ARCHES_WITH_KPACK_1
from rocstack_kernels.target import Target

PREFILL_CONFIGS: dict[str, dict[int, dict]] = {
    "default": {
        64: {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
        128: {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3},
        256: {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2},
    },
    "hopper": {
        64: {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 4, "num_stages": 3},
        128: {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3},
        256: {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 8, "num_stages": 2},
    },
    "hip": {
        64: {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 1,
             "waves_per_eu": 2, "matrix_instr_nonkdim": 16, "kpack": 1},
        128: {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 1,
              "waves_per_eu": 2, "matrix_instr_nonkdim": 16, "kpack": 1},
        256: {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 1,
              "waves_per_eu": 2, "matrix_instr_nonkdim": 16, "kpack": 1},
    },
    "cdna2": {256: {"num_warps": 8}},
    # 8 warps at hd128: with 4 the causal variants hit 256 VGPRs and spilled (build report).
    "cdna3": {64: {"kpack": 2}, 128: {"kpack": 2, "num_warps": 8}, 256: {"kpack": 2}},
    "gfx950": {64: {"kpack": 1}, 128: {"kpack": 1}, 256: {"BLOCK_M": 128, "num_warps": 8, "kpack": 1}},
    "interpreter": {
        64: {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1},
        128: {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1},
        256: {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1},
    },
}

# Decode: BLOCK_N tokens per loop step (several pages). The launcher splits the
# context over programs until about ``programs_per_cu`` x CUs programs exist,
# never giving a split fewer than ``min_split_tokens`` tokens nor making more
# than ``max_splits`` splits.
DECODE_CONFIGS: dict[str, dict] = {
    "default": {"BLOCK_N": 64, "num_warps": 4, "num_stages": 3,
                "programs_per_cu": 4, "min_split_tokens": 256, "max_splits": 128},
    "hip": {"num_stages": 1, "waves_per_eu": 2, "matrix_instr_nonkdim": 16, "kpack": 1},
    "cdna3": {"kpack": 2},
    "gfx950": {"kpack": 1},
    "interpreter": {"BLOCK_N": 16, "num_stages": 1, "programs_per_cu": 2, "min_split_tokens": 16},
}


def _merge(table: dict, target: Target, pick) -> dict:
    merged: dict = {}
    for level in ("default", target.backend, target.family, target.arch):
        merged.update(pick(table.get(level, {})))
    if target.arch in ARCHES_WITH_KPACK_1 and merged.get("kpack", 1) != 1:
        raise ValueError(f"attention config on {target.arch} sets kpack={merged['kpack']}; it needs kpack=1")
    return merged


def prefill_config(target: Target, head_dim: int) -> dict:
    """Tile and compiler config of flash_attention for one head dim on ``target``."""
    return _merge(PREFILL_CONFIGS, target, lambda level: level.get(head_dim, {}))


def decode_config(target: Target) -> dict:
    """Config of paged_attention_decode on ``target``."""
    return _merge(DECODE_CONFIGS, target, lambda level: level)
