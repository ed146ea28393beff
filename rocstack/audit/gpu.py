"""AMDGPU code object resources: LDS over the arch's limit, register spills, scratch, dynamic stacks."""

from __future__ import annotations

from rocstack.arches import all_arches
from rocstack.audit import demangle
from rocstack.audit.codeobject import CodeObject
from rocstack.audit.report import CHECK_CODE_OBJECT, AuditReport

_SHOWN = 10


def check_code_objects(report: AuditReport, label: str, objects: list[CodeObject]) -> None:
    """Resource findings, one per kind of problem per file (a fat binary repeats kernels per target)."""
    arches = all_arches()
    for obj in objects:
        prefix = "" if obj.where == "file" else f"{obj.where}: "
        for problem in obj.problems:
            report.add(CHECK_CODE_OBJECT, "warning", label, prefix + problem)
    over_lds, spilling, scratch, dynamic = [], [], [], []
    for obj in objects:
        arch = arches.get(obj.processor or "")
        for k in obj.kernels:
            if arch and k.lds_bytes > arch.lds_bytes_per_workgroup:
                over_lds.append((obj, k, f"{k.lds_bytes} B > {arch.lds_bytes_per_workgroup} B"))
            if k.vgpr_spills or k.sgpr_spills:
                spilling.append((obj, k, f"{k.vgpr_spills} VGPR/{k.sgpr_spills} SGPR spills"))
            elif k.scratch_bytes:
                scratch.append((obj, k, f"{k.scratch_bytes} B/lane"))
            if k.dynamic_stack:
                dynamic.append((obj, k, "dynamic stack"))
    if over_lds:
        report.add(CHECK_CODE_OBJECT, "error", label,
                   f"{_count(over_lds)} need more LDS than their arch has per workgroup: launches fail",
                   evidence=_kernel_list(over_lds),
                   hint="reduce the tile sizes / shared memory of those kernels for this arch")
    if spilling:
        report.add(CHECK_CODE_OBJECT, "warning", label,
                   f"{_count(spilling)} spill registers to scratch memory (slow)", evidence=_kernel_list(spilling),
                   hint="lower register pressure (smaller tiles, fewer stages) or relax waves_per_eu")
    if scratch:
        report.add(CHECK_CODE_OBJECT, "warning", label, f"{_count(scratch)} use scratch (private) memory",
                   evidence=_kernel_list(scratch),
                   hint="stack arrays or dynamic indexing put data in slow scratch memory")
    if dynamic:
        report.add(CHECK_CODE_OBJECT, "warning", label,
                   f"{_count(dynamic)} use a dynamic stack (recursion or indirect calls)",
                   evidence=_kernel_list(dynamic), hint="avoid recursion and function pointers in device code")


def _count(rows) -> str:
    targets = sorted({obj.target_id or "?" for obj, _k, _d in rows})
    return f"{len(rows)} kernels in {len(targets)} targets ({', '.join(targets)})"


def _kernel_list(rows) -> str:
    names = demangle.demangle_many(k.name for _obj, k, _what in rows[:_SHOWN])
    shown = [f"{obj.target_id}: {names[k.name]} ({what})" for obj, k, what in rows[:_SHOWN]]
    more = f" (+{len(rows) - _SHOWN} more)" if len(rows) > _SHOWN else ""
    return ", ".join(shown) + more
