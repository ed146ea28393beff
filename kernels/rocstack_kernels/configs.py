"""Per-arch launch configs, kept as data in ``data/configs.json``.

Fallback (documented in the JSON too): a target's config for a kernel starts from
the kernel's ``default`` entry and is overridden, key by key, by the entry for its
backend (``hip``/``cuda``), then its arch family (``cdna3``, ``hopper``, ...), then
its exact arch (``gfx950``, ``sm90``). So an arch nobody tuned still gets its
family's or backend's numbers, and a new arch needs no code change.

AMD knobs (``waves_per_eu``, ``matrix_instr_nonkdim``, ``kpack``) reach the compiler
only on the hip backend, ``maxnreg`` (a register cap per thread, which can buy one
more resident program per SM) only on cuda: each backend rejects the other's options.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from rocstack_kernels.target import Target

AMD_ONLY_OPTIONS = ("waves_per_eu", "matrix_instr_nonkdim", "kpack")
CUDA_ONLY_OPTIONS = ("maxnreg",)
# gfx950's matrix cores take one K pack; kpack=2 there fails to compile or is wrong.
ARCHES_WITH_KPACK_1 = ("gfx950",)


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    text = resources.files("rocstack_kernels").joinpath("data/configs.json").read_text()
    return {name: levels for name, levels in json.loads(text).items() if not name.startswith("_")}


def kernel_names() -> list[str]:
    return sorted(_table())


def config_for(kernel: str, target: Target) -> dict:
    """The merged config dict of ``kernel`` on ``target`` (see module doc for the order)."""
    levels = _table().get(kernel)
    if levels is None:
        raise KeyError(f"no config for kernel {kernel!r} in data/configs.json")
    merged: dict = {}
    for level in ("default", target.backend, target.family, target.arch):
        merged.update(levels.get(level, {}))
    if target.arch in ARCHES_WITH_KPACK_1 and merged.get("kpack", 1) != 1:
        raise ValueError(f"config for {kernel} on {target.arch} sets kpack={merged['kpack']}; "
                         f"{target.arch} needs kpack=1 (fix data/configs.json)")
    return merged


def known_keys(kernel: str) -> set[str]:
    """Every config key ``kernel`` has on some level of data/configs.json."""
    return {key for level in _table()[kernel].values() for key in level}


def with_override(config: dict, override: dict | None, known: set[str], kernel: str) -> dict:
    """``config`` with the keys of ``override`` replaced (tuning sweeps pass these).

    A key outside ``known`` is refused: silently ignoring a misspelt knob would make
    a sweep time the default config under another name.
    """
    unknown = sorted(set(override or {}) - known)
    if unknown:
        raise ValueError(f"config for {kernel} has unknown key(s) {', '.join(unknown)}; "
                         f"known keys: {', '.join(sorted(known))}")
    return {**config, **(override or {})}


def override_key(override: dict | None) -> str | None:
    """A hashable form of a config override for the launchers' plan caches (values may be lists).

    Launchers compute their plan on every call; cached, a launch pays a dict lookup
    instead of the config merge (~15 us of host time per call on the 2-core dev machine,
    enough to make a 30 us kernel host-bound).
    """
    return None if not override else json.dumps(override, sort_keys=True)


def override_from_key(key: str | None) -> dict | None:
    return json.loads(key) if key else None


def launch_options(config: dict, target: Target, num_warps: int | None = None) -> dict:
    """Compiler options for one launch: warps, stages, AMD knobs on hip, ``maxnreg`` on cuda."""
    options = {"num_warps": num_warps if num_warps is not None else config.get("num_warps", 4),
               "num_stages": config.get("num_stages", 1)}
    backend_options = AMD_ONLY_OPTIONS if target.is_hip else CUDA_ONLY_OPTIONS if target.backend == "cuda" else ()
    options.update({key: config[key] for key in backend_options if key in config})
    return options


def warps_for_block(config: dict, block: int) -> int:
    """Warps for a row tile of ``block`` elements from the ``warps_by_block`` ladder."""
    for limit, warps in config["warps_by_block"]:
        if block <= limit:
            return warps
    return config["warps_by_block"][-1][1]
