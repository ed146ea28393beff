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
  stages hide the K/V loads (cp.async, or TMA with ``TMA: True``) behind the two
  dots. A ``tma`` entry (sm90+ only) holds the tiles of the TMA kernel
  (``flash_attention_tma``), which dense launches of that head dim then use;
  packed (varlen) launches keep the pointer kernel and the level's own tiles.
* AMD: ``num_stages`` 1 for fused attention (pipelining two dots in one loop
  costs LDS and VGPRs there), ``waves_per_eu`` 2 as occupancy hint,
  ``matrix_instr_nonkdim`` 16 (usually beats 32 on CDNA3), ``kpack`` 2 on
  CDNA3 and 1 on gfx950 (required there) and CDNA2. Head dim 256 uses smaller
  tiles so K/V fit in 64 KiB of LDS (gfx950 has 160 KiB).
* interpreter (TRITON_INTERPRET=1): tiny tiles so the CPU interpreter stays
  fast and every path - several KV blocks, masked and unmasked - still runs;
  hd128 has a ``tma`` entry, as on Hopper, so the TMA kernel runs there too.
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
    # H100 sweeps, 2026-11-21. Pointer kernel (scripts/attention_tune.py): 128x128 / 8 warps / 3 stages leads
    # from S = 2k up; for S <= 1024 a 64x64 tile with 4 warps is 5-20% faster. hd128 dense
    # runs the TMA kernel with its own tiles (``tma``; scripts/attention_tma_sweep.py): 64x64 / 4 warps /
    # 3 stages is 8-30% faster than 128x128 up to S = 2k (two CTAs per SM overlap each
    # other's softmax and wgmma); 2 or 4 stages, 64x32 and 128-row tiles were 5-40% slower
    # there. From 4k up the card runs at its 700 W cap (clocks 1.4-1.98 GHz, +-7% between
    # repeats): non-causal, 128x128 was as fast or faster, so the long tier keeps it; causal,
    # 64x64 stayed 3-9% ahead up to 8k in every sweep (its diagonal blocks waste less work).
    # Re-swept after the TMA kernel lost its empty masked loop and per-element divides
    # (2026-11-21, second session): the long tier is now 128x64 / 4 warps / 2 stages (one
    # warpgroup issuing two independent 64-row wgmmas; 98 KiB smem, so two CTAs per SM):
    # 0.80-0.90x SDPA from S = 2k up against 0.77-0.84x for 128x128 / 8 warps. Causal and
    # ragged-tail variants of that tile spill about 90 bytes (255 registers) and still
    # measured as fast as 128x128 at 16k. S <= 1024 non-causal keeps 64x64 (S = 256: 0.81x
    # vs 0.66-0.83x across two sweeps).
    # Third session (graph-timed, interleaved sweep): the short tier keeps Q in registers
    # (``Q_IN_REGS``; wgmma reads it from registers, 16 KiB less smem): 0.765x SDPA at S = 512
    # and 0.774x at 1024 against 0.745x / 0.738x for the same tile with Q in smem. Three CTAs
    # per SM (2 stages, Q in registers, maxnreg 168: 64 KiB smem) lost 10-15% to 3 stages.
    "hopper": {
        64: {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 4, "num_stages": 3,
             "short": {"max_seqlen": 1024, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3}},
        128: {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 3,
              "short": {"max_seqlen": 1024, "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3},
              "tma": {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2,
                      "short": {"max_seqlen": 1024, "max_seqlen_causal": 8192,
                                "BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3,
                                "Q_IN_REGS": True}}},
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
        128: {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1,
              "tma": {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1}},
        256: {"BLOCK_M": 16, "BLOCK_N": 16, "num_warps": 4, "num_stages": 1},
    },
}

# Decode: BLOCK_N tokens per loop step (several pages). The launcher splits the
# context over programs until at most ``programs_per_cu`` x CUs programs exist,
# never giving a split fewer than ``min_split_tokens`` tokens nor making more
# than ``max_splits`` splits. ``fused_merge``: the last split of each (sequence,
# kv head) merges the partials (atomic counter) instead of a second kernel;
# ``merge_block_s`` splits are merged per step.
DECODE_CONFIGS: dict[str, dict] = {
    "default": {"BLOCK_N": 64, "num_warps": 4, "num_stages": 3,
                "programs_per_cu": 4, "min_split_tokens": 256, "max_splits": 128,
                "fused_merge": False, "merge_block_s": 16},
    # H200 sweep (2026-12-03, graph replay, kernels/bench-results/sweep-h200-2026-12-03.txt):
    # 4 programs per SM (109 registers x 128 threads: 4 fit) with the split count rounded
    # down: batch 8 x 8192 81 us (80% of copy) against 94 us at 2 and 87 us for the H100's
    # 2 rounded up; batch 1 x 32k 53.8 us against 55.5 us. The fused merge lost 10-20%
    # (the last split merges its group's heads one after another: 66 us at batch 1).
    # Second H200 sweep (sweep4-h200-2026-12-03.txt): the merge kernel reads 64 splits per
    # step, so batch 1 x 32k (64 splits) merges in one step instead of four dependent ones:
    # 53.6 -> 50.5 us; batch 8 (4 splits) unchanged. Page indices loaded a step ahead of
    # the K/V loads (and K/V a step ahead in registers) did not move either case
    # (sweep3-h200-2026-12-03.txt): the step's latency is not the index load's.
    "cuda": {"programs_per_cu": 4, "merge_block_s": 64},
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


def _prefill_level(target: Target, head_dim: int, tma: bool) -> dict:
    config = _merge(PREFILL_CONFIGS, target, lambda level: level.get(head_dim, {}))
    tma_config = config.pop("tma", None)
    if tma:
        if tma_config is None:
            raise ValueError(f"no TMA attention config for head_dim {head_dim} on {target.arch}")
        config.pop("short", None)  # the TMA kernel's tiers are its own
        config.update(tma_config)
    return config


def prefill_config(target: Target, head_dim: int, short: bool = False, tma: bool = False) -> dict:
    """Tile and compiler config of flash_attention for one head dim on ``target``.

    A level may carry ``short: {max_seqlen, ...}``: keys used instead (``short``
    True) when the longest query sequence is at most ``max_seqlen`` (or
    ``max_seqlen_causal`` for causal launches, where given). ``tma``
    picks the TMA kernel's tiles (``prefill_has_tma`` says whether there are any).
    """
    config = _prefill_level(target, head_dim, tma)
    tier = config.pop("short", None)
    if short and tier:
        config.update({key: value for key, value in tier.items() if not key.startswith("max_seqlen")})
    return config


def prefill_short_limit(target: Target, head_dim: int, tma: bool = False, causal: bool = False) -> int | None:
    """Longest query sequence the ``short`` tier serves on ``target``, or None if it has none."""
    tier = _prefill_level(target, head_dim, tma).get("short")
    if not tier:
        return None
    return tier.get("max_seqlen_causal", tier["max_seqlen"]) if causal else tier["max_seqlen"]


def prefill_has_tma(target: Target, head_dim: int) -> bool:
    """Whether dense launches of ``head_dim`` on ``target`` go to the TMA kernel."""
    return "tma" in _merge(PREFILL_CONFIGS, target, lambda level: level.get(head_dim, {}))


def decode_config(target: Target) -> dict:
    """Config of paged_attention_decode on ``target``."""
    return _merge(DECODE_CONFIGS, target, lambda level: level)
