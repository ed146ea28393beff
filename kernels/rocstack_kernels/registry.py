"""The kernel registry: the one list the AOT builder, the bench harness and the tests walk.

Contract for a kernel module (how to add a kernel)
--------------------------------------------------
1. Write one module holding the ``@triton.jit`` kernel(s), the launcher (the public
   function, which validates its arguments and raises ``ValueError`` naming the bad
   one), and the torch reference.
2. At module level define ``KERNELS: tuple[KernelEntry, ...]`` (usually one entry;
   ``rms_norm`` has two: ``rms_norm`` and ``add_rms_norm``).
3. Add the module's dotted name to ``KERNEL_MODULES`` below. That single line is the
   whole registration: ``rocstack kernels build`` then compiles its specializations
   for every requested arch, and ``invoke bench`` runs its bench cases.

A ``KernelEntry`` carries:

* ``name`` - unique, used by ``--kernel NAME`` filters and in the manifest.
* ``specializations(target) -> list[Specialization] | Unsupported`` - every variant
  shipped for ``target`` (a ``rocstack_kernels.target.Target``). Each
  ``Specialization`` gives the jit function, a label, ``args`` (one value per kernel
  parameter, by name: a ``torch.dtype`` stands for a tensor of that dtype, 16-byte
  aligned and under 2 GiB; an ``int``/``float`` is an example scalar whose
  specialization - ``== 1``, ``% 16 == 0`` - is what the runtime call will have;
  constexpr parameters get their exact value), and ``options`` (``num_warps``,
  ``num_stages`` and AMD knobs, exactly what the launcher passes). The launcher and
  this function must derive constexprs and options from the same code (a module's
  ``_plan`` helper) so the AOT build hashes to the same Triton cache entry as the
  run-time launch; ``kernels/scripts/prove_no_jit.py`` checks that on a GPU. Return
  ``Unsupported(reason)`` when the kernel cannot target the arch (FP8 on gfx90a);
  the build records the reason in the manifest instead of dropping the kernel.
* ``bench_cases() -> list[BenchCase]`` - what ``invoke bench`` measures. A case's
  ``setup(device)`` allocates inputs and returns a ``BenchSetup``: ``run`` (our
  kernel), ``peers`` (name -> callable run in the same process: torch eager,
  torch.compile, vendor library), the bytes moved and/or FLOPs of one call, which
  measured ceiling it is compared with (``"copy"``, ``"bf16_mm"``, ``"fp8_mm"``), and
  optionally ``variant(config)``: our kernel with a launch-config override on the same
  inputs, which ``kernels/scripts/sweep_configs.py`` times beside the peers.
  Cases that need a module of their own (attention's peers and graph replays) live
  beside the harness and are named, not imported, by the kernel module:
  ``bench_cases=cases_in("rocstack_kernels.attention.bench", "prefill_cases")``; a kernel
  module never imports bench code (the bench imports the kernels).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# One line per kernel module; see the module docstring for what a module provides.
KERNEL_MODULES: tuple[str, ...] = (
    "rocstack_kernels.rms_norm",
    "rocstack_kernels.rotary",
    "rocstack_kernels.silu_and_mul",
    "rocstack_kernels.fp8_quant",
    "rocstack_kernels.fp8_gemm",
    "rocstack_kernels.attention.flash_attention",
    "rocstack_kernels.attention.paged_attention",
)

CEILINGS = ("copy", "bf16_mm", "fp8_mm")


@dataclass(frozen=True)
class Specialization:
    """One compiled variant of one jit function on one target."""

    fn: Any                          # triton JITFunction
    label: str                       # e.g. "bf16 block=4096"
    args: Mapping[str, Any]          # parameter name -> torch.dtype | int | float | constexpr value
    options: Mapping[str, Any]       # num_warps, num_stages, AMD knobs


@dataclass(frozen=True)
class Unsupported:
    """The kernel cannot run on this target; ``reason`` says why (goes into the manifest)."""

    reason: str


@dataclass
class BenchSetup:
    """Inputs allocated for one bench case, and the callables timed on them."""

    run: Callable[[], Any]
    peers: Mapping[str, Callable[[], Any]]
    ceiling: str                      # one of CEILINGS
    bytes_moved: int | None = None    # fewest bytes one call must move (memory-bound cases)
    flops: int | None = None          # arithmetic of one call (compute-bound cases)
    # config override -> our kernel on the same inputs with that launch config (tuning sweeps:
    # kernels/scripts/sweep_configs.py); None where the kernel takes no override.
    variant: Callable[[dict], Callable[[], Any]] | None = None


@dataclass(frozen=True)
class BenchCase:
    name: str                                       # e.g. "32768x4096 bf16"
    setup: Callable[[Any], BenchSetup]              # device -> BenchSetup


@dataclass(frozen=True)
class KernelEntry:
    name: str
    specializations: Callable[[Any], "list[Specialization] | Unsupported"]
    bench_cases: Callable[[], list[BenchCase]] = field(default=lambda: [])
    description: str = ""


def cases_in(module_name: str, function: str) -> Callable[[], list[BenchCase]]:
    """``bench_cases`` that calls ``module_name.function()``, imported on first call.

    Named like ``KERNEL_MODULES``: the bench module imports the kernel it measures, so
    the kernel module refers to its cases by name instead of importing them.
    """

    def cases() -> list[BenchCase]:
        return getattr(importlib.import_module(module_name), function)()

    cases.__qualname__ = f"cases_in({module_name}:{function})"
    return cases


def entries() -> dict[str, KernelEntry]:
    """Every registered kernel by name, in registration order."""
    found: dict[str, KernelEntry] = {}
    for module_name in KERNEL_MODULES:
        module = importlib.import_module(module_name)
        kernels = getattr(module, "KERNELS", None)
        if not kernels:
            raise RuntimeError(f"{module_name} is listed in KERNEL_MODULES but defines no KERNELS")
        for entry in kernels:
            if entry.name in found:
                raise RuntimeError(f"kernel name {entry.name!r} registered twice ({module_name})")
            found[entry.name] = entry
    return found


def select(names: str | list[str] | None) -> list[KernelEntry]:
    """Entries named in a comma list (all when None/empty); unknown names raise ValueError."""
    every = entries()
    if not names:
        return list(every.values())
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in wanted if n not in every]
    if unknown:
        raise ValueError(f"unknown kernel {', '.join(unknown)}; known: {', '.join(every)}")
    return [every[n] for n in wanted]
