"""Repeat launches of a triton.jit kernel without re-deriving its specialization each time.

Triton's ``kernel[grid](...)`` binds every argument and recomputes its
specialization (types, alignment, divisibility) on every call, then looks the
compiled kernel up by that key: about 25 us of host time per launch of the TMA
attention kernel on the H100's host, where SDPA's whole call costs 22 us. When
the caller knows a key that fixes the specialization - dtypes and constexprs,
with every integer argument ``do_not_specialize`` and every pointer allocated
by torch (16-byte aligned) - the kernel compiled (or loaded from the AOT build)
by the first launch is launched directly from then on.
"""

from __future__ import annotations

from collections.abc import Hashable


# Host-side integer helpers. ``triton.cdiv`` and ``triton.next_power_of_2`` are
# ConstexprFunctions (callable from kernels too): about 10 us per call from Python on
# the 2-core dev machine, several per launch - as much as a 30 us kernel. These are
# the same arithmetic for launchers.
def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


class SpecializedLauncher:
    """Launches ``fn`` and remembers its compiled kernel per caller-given key."""

    def __init__(self, fn):
        self.fn = fn
        self.compiled: dict[Hashable, object] = {}

    def __call__(self, key: Hashable, grid: tuple[int, ...], args: dict, options: dict) -> None:
        """``args``: every parameter of ``fn`` by name (constexprs too); ``options``: num_warps etc.

        ``key`` must change whenever anything that Triton specializes on changes,
        the options and the device included.
        """
        compiled = self.compiled.get(key)
        if compiled is None:
            # Under TRITON_INTERPRET=1 there is no compiled kernel to keep (the launch returns None).
            compiled = self.fn[grid](**args, **options)
            if compiled is not None and hasattr(compiled, "run"):
                self.compiled[key] = compiled
            return
        # A compiled kernel's launcher reads all three grid dims (Triton's dispatch pads them).
        compiled[tuple(grid) + (1,) * (3 - len(grid))](*(args[name] for name in self.fn.arg_names))
