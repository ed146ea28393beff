"""Helpers shared by the kernel tests and the image validation suites.

Accuracy is the relative error ||out - ref|| / ||ref|| against a float64 torch
reference; outputs are poisoned with NaN before a kernel writes them so an
unwritten element fails the check instead of passing on leftover memory.
"""

from __future__ import annotations

import torch

# Relative-error ceilings per output dtype: a few ulps of the dtype, summed over a row.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; NaN anywhere in ``out`` gives inf."""
    out64 = out.detach().to(torch.float64).cpu()
    ref64 = ref.detach().to(torch.float64).cpu()
    if not torch.isfinite(out64).all():
        return float("inf")
    denom = torch.linalg.vector_norm(ref64).item()
    return torch.linalg.vector_norm(out64 - ref64).item() / (denom if denom else 1.0)


def poisoned(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """A tensor of NaN (or the dtype's max for types without NaN) for a kernel to overwrite."""
    if dtype.is_floating_point:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.full(shape, torch.iinfo(dtype).max, dtype=dtype, device=device)


def fix_interpreter_scalar_index() -> bool:
    """Work around triton-lang/triton#9171 in the CPU interpreter; True if a patch was applied.

    Triton <= 3.6's interpreter turns a run-time scalar into a Python int with
    ``int(array_of_shape_1)``, which numpy >= 2.4 rejects, so any ``range(..., n)``
    over a kernel argument fails under TRITON_INTERPRET=1. Upstream's fix squeezes
    the array first; this applies the same change to the installed interpreter.
    """
    import numpy
    from triton.runtime import interpreter

    if tuple(int(p) for p in numpy.__version__.split(".")[:2]) < (2, 4):
        return False
    original = interpreter._patch_lang_tensor
    if getattr(original, "_rocstack_fixed", False):
        return True

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

    patched._rocstack_fixed = True
    interpreter._patch_lang_tensor = patched
    return True


def assert_errors_name_their_argument(cases) -> None:
    """Each ``(name, call)``: ``call()`` raises a ValueError whose message starts with ``name``."""
    for name, call in cases:
        try:
            call()
        except ValueError as exc:
            assert str(exc).startswith(name), f"expected an error about {name}, got: {exc}"
        else:
            raise AssertionError(f"expected a ValueError about {name}; the call returned")
