"""C++ demangling in one batch: a single ``c++filt`` process for all names of an audit.

One process per name would cost milliseconds each; one batched call demangles
tens of thousands of names in a fraction of a second (see benchmarks/audit_bench.py).
Without binutils' c++filt the names stay mangled and :func:`available` says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache

_CXXFILT_CANDIDATES = ("c++filt", "llvm-cxxfilt", "llvm-cxxfilt-19")


@lru_cache(maxsize=1)
def _tool() -> str | None:
    for name in _CXXFILT_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def available() -> bool:
    return _tool() is not None


def demangle_many(names) -> dict[str, str]:
    """mangled -> demangled for every ``_Z`` name (others map to themselves)."""
    unique = list(dict.fromkeys(names))
    out = {n: n for n in unique}
    mangled = [n for n in unique if n.startswith("_Z") and "\n" not in n]
    tool = _tool()
    if not mangled or tool is None:
        return out
    try:
        done = subprocess.run([tool], input="\n".join(mangled) + "\n", capture_output=True, text=True,
                              timeout=120, check=True, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return out
    lines = done.stdout.split("\n")
    if len(lines) >= len(mangled):
        out.update(zip(mangled, lines[: len(mangled)]))
    return out


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def mangled_fragments(qualified: str) -> list[str] | None:
    """Length-prefixed pieces every Itanium-mangled name of ``a::b::c`` contains (``1a``, ``1b``, ``1c``).

    Used to pick the few candidate symbols worth demangling; None when the name
    has parts (templates, operators) this cheap filter cannot express.
    """
    parts = qualified.split("::")
    if not all(_IDENT.match(p) for p in parts):
        return None
    # ``std`` is mangled as ``St``, not ``3std``: it cannot be filtered on
    return [f"{len(p)}{p}" for p in parts if p != "std"]
