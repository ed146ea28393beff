"""Kernels shipped as per-arch files, grouped into kernel sets.

amd-aiter ships ``hsa/gfx942/fmoe_b16.co`` and ``hsa/gfx950/fmoe_b16.co``; rocBLAS
ships ``Kernels.so-000-gfx90a-xnack+.hsaco``. Each is one kernel set whose member
files differ only by the arch: the path with every arch token replaced by
``{arch}`` is the set's key. A set covers an arch when one of its files holds
code that runs there.
"""

from __future__ import annotations

import re

from rocstack.audit.devicecode import KERNEL_SET, DeviceRow, DeviceUnit

# gfx942, gfx90a, gfx1100, gfx9-4-generic, optionally with feature suffixes as file names spell
# them (gfx90a-xnack+, gfx90a:xnack-, gfx942_sramecc+); "gfx9" alone (a family) is not an arch
ARCH_TOKEN = re.compile(
    r"gfx(?:\d+(?:-\d+)?-generic|[0-9][0-9a-f]{1,3})(?![0-9a-z])(?:[-:_](?:xnack|sramecc)[+-])*")
PLACEHOLDER = "{arch}"


def kernel_set_key(rel: str) -> str:
    """``hsa/gfx942/fmoe_b16.co`` -> ``hsa/{arch}/fmoe_b16.co`` (unchanged when it names no arch)."""
    return ARCH_TOKEN.sub(PLACEHOLDER, rel)


def group(items: list[tuple[str, str, str, DeviceUnit]]) -> list[DeviceRow]:
    """(component, relative path, label, unit) of per-file units -> one row per kernel set."""
    rows: dict[tuple[str, str], DeviceRow] = {}
    for component, rel, label, unit in items:
        key = kernel_set_key(rel)
        row = rows.get((component, key))
        if row is None:
            row = rows[(component, key)] = DeviceRow(key, KERNEL_SET, component)
        row.units.append(unit)
        row.files.append(label)
    return list(rows.values())
