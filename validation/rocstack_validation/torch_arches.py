"""What torch says it was built for, and whether its own HIP library delivers it.

One reader for both suites (rocstack's images and any image): ``torch.cuda.get_arch_list()``
is empty without a visible device, so the compiled-in flags (``_cuda_getArchFlags``) are read
then. Standard library only: the any-image probe imports this with the image's own Python.
"""

from __future__ import annotations


def arch_list(torch) -> tuple[list[str], str]:
    """(torch's compiled arch list, where it was read)."""
    arches = list(torch.cuda.get_arch_list())
    if arches:
        return arches, "torch.cuda.get_arch_list()"
    flags = getattr(torch._C, "_cuda_getArchFlags", lambda: None)() or ""
    return [f for f in flags.replace(";", " ").split() if f], "torch._C._cuda_getArchFlags() (no device visible)"


def processors(targets) -> set[str]:
    """gfx942 from gfx942, gfx942:sramecc+:xnack- and sm_/compute_ leftovers alike."""
    return {str(t).split(":")[0] for t in targets if str(t).strip()}


def declared_vs_delivered(declared: list[str], delivered: list[str]) -> tuple[list[str], list[str]]:
    """(declared but no code delivered, delivered but not declared), by processor, sorted."""
    said, has = processors(declared), processors(delivered)
    return sorted(said - has), sorted(has - said)
