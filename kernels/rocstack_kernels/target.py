"""Which GPU a kernel is built for or runs on, and what that GPU can do.

A ``Target`` names one compile target: an AMD gfx arch (``gfx942``) or an NVIDIA
compute capability (``sm90``), plus the pseudo-target ``interpreter`` used when
``TRITON_INTERPRET=1`` runs kernels on the CPU. Config selection, the FP8 flavour
and the AOT builder all key off it. AMD facts come from ``rocstack.arches`` so the
arch table lives in one place.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import torch

from rocstack.arches import get_arch, parse_target_id, split_arch_list
from rocstack.errors import ArchError

# NVIDIA compute capability -> family name used as a config key.
_NVIDIA_FAMILIES = {80: "ampere", 86: "ampere", 87: "ampere", 89: "ada", 90: "hopper",
                    100: "blackwell", 120: "blackwell"}
# First NVIDIA compute capability with FP8 tensor cores (Ada).
_NVIDIA_FIRST_FP8 = 89


@dataclass(frozen=True)
class Target:
    """One compile target: ``backend`` is "hip", "cuda" or "interpreter"."""

    backend: str
    arch: str          # "gfx942", "sm90", "interpreter"
    family: str        # config key: "cdna3", "hopper", "interpreter", ...
    warp_size: int

    @property
    def is_hip(self) -> bool:
        return self.backend == "hip"

    def gpu_target(self):
        """The triton GPUTarget to compile for (not defined for the interpreter)."""
        from triton.backends.compiler import GPUTarget

        if self.backend == "hip":
            return GPUTarget("hip", self.arch, self.warp_size)
        if self.backend == "cuda":
            return GPUTarget("cuda", int(self.arch[2:]), self.warp_size)
        raise ValueError(f"target {self.arch!r} is the CPU interpreter and has no GPU code to build")

    def fp8_dtype(self) -> torch.dtype | None:
        """The FP8 e4m3 flavour this target's matrix units take, or None."""
        if self.backend == "hip":
            names = get_arch(self.arch).fp8_dtypes
            return getattr(torch, names[0]) if names else None
        if self.backend == "cuda":
            return torch.float8_e4m3fn if int(self.arch[2:]) >= _NVIDIA_FIRST_FP8 else None
        return torch.float8_e4m3fn  # interpreter: emulated, both flavours work

    def fp8_unsupported_reason(self) -> str | None:
        if self.fp8_dtype() is not None:
            return None
        if self.backend == "hip":
            return f"{self.arch} ({get_arch(self.arch).family}) has no FP8 matrix instructions"
        return f"{self.arch} has no FP8 tensor cores (they start at sm89)"

    def __str__(self) -> str:
        return self.arch


INTERPRETER = Target("interpreter", "interpreter", "interpreter", 1)


def parse_target(name: str) -> Target:
    """``gfx942`` / ``gfx942:sramecc+:xnack-`` / ``sm90`` / ``sm_90`` -> Target."""
    text = name.strip().lower()
    match = re.fullmatch(r"sm_?(\d{2,3})a?", text)
    if match:
        cc = int(match.group(1))
        family = _NVIDIA_FAMILIES.get(cc)
        if family is None:
            raise ArchError(f"unknown NVIDIA target {name!r}",
                            f"use one of {', '.join('sm%d' % c for c in sorted(_NVIDIA_FAMILIES))}")
        return Target("cuda", f"sm{cc}", family, 32)
    if text == "interpreter":
        return INTERPRETER
    arch = parse_target_id(text).arch  # rocstack's parser: raises ArchError naming the known arches
    return Target("hip", arch.name, arch.family.lower(), arch.wavefront_size)


def parse_targets(value: str) -> list[Target]:
    """Comma list of targets, duplicates dropped, order kept."""
    names = split_arch_list(value)
    if not names:
        raise ArchError("no target given", "pass --arch gfx942[,gfx90a,sm90,...]")
    targets: list[Target] = []
    for name in names:
        target = parse_target(name)
        if target not in targets:
            targets.append(target)
    return targets


def interpreting() -> bool:
    """True when triton runs kernels through its CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _device_target(index: int) -> Target:
    props = torch.cuda.get_device_properties(index)
    if torch.version.hip:
        return parse_target(props.gcnArchName)
    return parse_target(f"sm{props.major}{props.minor}")


def target_of(device: torch.device) -> Target:
    """The target a tensor on ``device`` runs on."""
    if interpreting():
        return INTERPRETER
    index = device.index if device.index is not None else torch.cuda.current_device()
    return _device_target(index)


@functools.lru_cache(maxsize=None)
def _multiprocessors(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def compute_units(device: torch.device) -> int:
    """Multiprocessors (CUs / SMs) of ``device``, for grids sized to fill it; 4 under the
    interpreter, where launches run on the CPU. Cached per device: launchers ask every call."""
    if target_of(device).backend == "interpreter":
        return 4
    return _multiprocessors(device.index if device.index is not None else torch.cuda.current_device())
