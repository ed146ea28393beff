"""Coverage as the runtime sees it: rows (libraries, kernel sets, kernel databases) x arches.

A cell is ``covered`` (the runtime finds code for the arch: every bundle of a library,
some file of a kernel set, a complete index of a database, every code object of a
kpack-split library in the archive the loader picks), ``partial`` (a library with some
bundles lacking it, a database index that names missing files, a kpack-split library
some of whose code objects or load paths fail) or ``missing``. A kpack cell names the
archives its code comes from. Generic code objects (``gfx9-4-generic``) count, noted as such: only a
runtime that loads code object v6 uses them.

Findings: a library or database missing (or partially missing) a requested arch is an
error naming ``hipErrorNoBinaryForGpu`` (a kpack-split library's are the kpack layer's:
they say which archive or package is missing); so is a component (an audited input) with
device code and none for the arch anywhere. A kernel set missing an arch that the
component's other sets have is a warning: per-arch trees legitimately ship kernels
that exist for one arch only (aiter's gfx950 FP4 GEMMs), and the runtime only looks
for the ones the library asks for on that GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rocstack.arches import TargetID, generic_targets, parse_target_id
from rocstack.audit.devicecode import DATABASE, KERNEL_SET, LIBRARY, DeviceRow, DeviceUnit
from rocstack.audit.report import CHECK_ARCH, AuditReport

COVERED, PARTIAL, MISSING = "covered", "partial", "missing"
_SHOWN = 8


@dataclass
class Cell:
    status: str
    sources: list[str] = field(default_factory=list)
    detail: str = ""
    generic: list[str] = field(default_factory=list)  # generic targets the coverage relies on
    archives: list[str] = field(default_factory=list)  # kpack archives the code comes from

    def to_dict(self) -> dict:
        out = {"status": self.status, "sources": self.sources}
        if self.detail:
            out["detail"] = self.detail
        if self.generic:
            out["generic"] = self.generic
        if self.archives:
            out["archives"] = self.archives
        return out


@dataclass
class Matrix:
    arches: list[str]
    rows: list[DeviceRow]
    cells: list[dict[str, Cell]]
    components: dict[str, dict[str, str]]  # component -> arch -> status

    def to_dict(self) -> dict:
        return {
            "arches": self.arches,
            "rows": [{"name": row.name, "kind": row.kind, "component": row.component, "sources": row.sources,
                      "files": len(row.files), "units": [u.to_dict() for u in row.units],
                      "cells": {arch: cell.to_dict() for arch, cell in cells.items()}}
                     for row, cells in zip(self.rows, self.cells)],
            "components": [{"name": name, "cells": cells} for name, cells in self.components.items()],
        }


def _target(text: str) -> TargetID | None:
    try:
        return parse_target_id(text, known_only=False)
    except Exception:  # noqa: BLE001 - a malformed target in a damaged file simply covers nothing
        return None


def unit_covers(unit: DeviceUnit, device: TargetID) -> tuple[bool, list[str]]:
    """(covers, generic targets used): can the runtime pick code for ``device`` from this unit?"""
    if unit.problems and not unit.targets:
        return False, []
    generic_used = []
    for text in unit.targets:
        built = _target(text)
        if built is None:
            continue
        if built.runs_on(device):
            return True, []
        members = generic_targets().get(built.processor)
        if members and device.processor in members.members and \
                TargetID(device.processor, built.features).runs_on(device):
            generic_used.append(built.processor)
    return bool(generic_used), generic_used


def resolved(row: DeviceRow) -> bool:
    """Is the row judged by the kpack loader's resolution rather than by the targets its units hold?"""
    return bool(row.units) and all(u.resolved is not None for u in row.units)


def _resolved_cell(row: DeviceRow, target: str) -> Cell:
    verdicts = [u.resolved.get(target) or {"status": MISSING, "archives": [], "detail": "not judged for it"}
                for u in row.units]
    statuses = {v["status"] for v in verdicts}
    archives = sorted({a for v in verdicts for a in v["archives"]})
    failing: dict[str, list[str]] = {}  # why -> the code objects it holds for
    for unit, verdict in zip(row.units, verdicts):
        if verdict["detail"]:
            failing.setdefault(verdict["detail"], []).append(unit.where)
    shown = "; ".join(f"{why} ({', '.join(wheres[:2])}{f' +{len(wheres) - 2} more' if len(wheres) > 2 else ''})"
                      for why, wheres in list(failing.items())[:_SHOWN])
    if statuses == {COVERED}:
        return Cell(COVERED, sorted({u.source for u in row.units}), "", [], archives)
    if statuses == {MISSING}:
        return Cell(MISSING, [], shown)
    return Cell(PARTIAL, sorted({u.source for u in row.units}), shown, [], archives)


def cell(row: DeviceRow, device: TargetID) -> Cell:
    if resolved(row):
        return _resolved_cell(row, str(device))
    hits = []
    generic: list[str] = []
    for unit in row.units:
        ok, used = unit_covers(unit, device)
        if ok:
            hits.append(unit)
            generic += [g for g in used if g not in generic]
    sources = sorted({u.source for u in hits})
    troubled = [u for u in hits if u.problems]
    if row.kind == LIBRARY:
        if not hits:
            return Cell(MISSING)
        if len(hits) < len(row.units):
            lacking = [u.where for u in row.units if u not in hits]
            return Cell(PARTIAL, sources, f"{len(lacking)} of {len(row.units)} bundles lack it: "
                                          + ", ".join(lacking[:_SHOWN]), generic)
        return Cell(COVERED, sources, "", generic)
    if not hits:
        return Cell(MISSING)
    if row.kind == DATABASE and len(troubled) == len(hits):
        return Cell(PARTIAL, sources, "; ".join(p for u in troubled for p in u.problems)[:2000], generic)
    return Cell(COVERED, sources, "", generic)


def columns(rows: list[DeviceRow], targets: list[TargetID]) -> list[TargetID]:
    """The requested targets, or else every processor some unit holds code for."""
    if targets:
        return list(targets)
    seen: list[str] = []
    for row in rows:
        for unit in row.units:
            for text in unit.targets:
                processor = text.split(":")[0]
                if processor not in seen:
                    seen.append(processor)
    return [TargetID(p) for p in sorted(seen, key=_arch_order)]


def _arch_order(name: str):
    digits = "".join(c for c in name[3:] if c.isdigit())
    return (len(name.split("-")), len(digits), name)


def build(rows: list[DeviceRow], targets: list[TargetID]) -> Matrix:
    devices = columns(rows, targets)
    arches = [str(d) for d in devices]
    cells = [{str(d): cell(row, d) for d in devices} for row in rows]
    components: dict[str, dict[str, str]] = {}
    for row, row_cells in zip(rows, cells):
        summary = components.setdefault(row.component, {})
        for arch, c in row_cells.items():
            summary[arch] = _merge(summary.get(arch), c.status)
    return Matrix(arches, rows, cells, components)


def _merge(before: str | None, status: str) -> str:
    if before is None or before == status:
        return status
    return PARTIAL


def check(report: AuditReport, matrix: Matrix, targets: list[TargetID]) -> None:
    """Findings for requested targets only (without --arch the matrix is informational)."""
    if not targets:
        return
    for device in targets:
        arch = str(device)
        for component in matrix.components:
            # kpack-split libraries: the kpack layer's findings say what is missing and which package has it
            indexes = [i for i, row in enumerate(matrix.rows) if row.component == component and not resolved(row)]
            if not indexes:
                continue
            status = None
            for i in indexes:
                status = _merge(status, matrix.cells[i][arch].status)
            if status == MISSING:
                kinds = _count_kinds([matrix.rows[i] for i in indexes])
                built = sorted({t for i in indexes for u in matrix.rows[i].units for t in u.targets})
                units = [u for i in indexes for u in matrix.rows[i].units]
                # a component of one file: the finding is on that file (a place a report can point at)
                files = matrix.rows[indexes[0]].files if len(indexes) == 1 else []
                _no_binary(report, files[0] if len(files) == 1 else component,
                           f"no code for {arch} anywhere in it ({kinds}): loading it there fails",
                           _why_missing(device, built, units), built, device)
                continue
            _row_findings(report, matrix, indexes, device)


def _row_findings(report: AuditReport, matrix: Matrix, indexes: list[int], device: TargetID) -> None:
    arch = str(device)
    missing_sets = []
    for i in indexes:
        row, c = matrix.rows[i], matrix.cells[i][arch]
        if c.generic and c.status == COVERED:
            report.add(CHECK_ARCH, "info", row.name, f"{arch} is covered only by generic code objects "
                                                     f"({', '.join(c.generic)})",
                       hint="the HIP runtime must load code object v6 (ROCm >= 6.2); "
                            f"build --offload-arch={device.processor} for older runtimes")
        if c.status == COVERED:
            continue
        if row.kind == KERNEL_SET:
            missing_sets.append(row.name)
            continue
        built = sorted({t for u in row.units for t in u.targets})
        why = _why_missing(device, built, row.units) if c.status == MISSING else c.detail
        what = "kernel database" if row.kind == DATABASE else "library"
        _no_binary(report, row.name, f"{what} {'lacks' if c.status == MISSING else 'only partly covers'} {arch}: "
                                     "its kernels fail there", why, built, device)
    if missing_sets:
        component = matrix.rows[indexes[0]].component
        more = f" (+{len(missing_sets) - _SHOWN} more)" if len(missing_sets) > _SHOWN else ""
        report.add(CHECK_ARCH, "warning", component,
                   f"{len(missing_sets)} kernel sets have no {arch} file while other sets do; a library that "
                   f"asks for one of them on {arch} fails to find it",
                   evidence=", ".join(missing_sets[:_SHOWN]) + more,
                   hint="if these kernels are meant for other arches only, nothing to do; else build them for "
                        f"{device.processor}")


def _no_binary(report: AuditReport, where: str, what: str, why: str, built: list[str], device: TargetID) -> None:
    report.add(CHECK_ARCH, "error", where,
               f"{what} with hipErrorNoBinaryForGpu ('Unable to find code object for all current devices'); {why}",
               evidence="built for: " + (", ".join(built[:40]) or "nothing"),
               hint=f"rebuild with --offload-arch={device.processor} (PYTORCH_ROCM_ARCH / GPU_TARGETS / "
                    "HIP_ARCHITECTURES) or install the package built for it")


def _why_missing(device: TargetID, built: list[str], units: list[DeviceUnit] = ()) -> str:
    unread = sorted({p for u in units if not u.targets for p in u.problems})
    if not built and unread:
        return "its code objects could not be read: " + "; ".join(unread)
    same = [t for t in built if t.split(":")[0] == device.processor]
    if same:
        return f"the {device.processor} code objects ({', '.join(same)}) need other xnack/sramecc settings than {device}"
    shown = ", ".join(built[:_SHOWN]) + (f" (+{len(built) - _SHOWN} more)" if len(built) > _SHOWN else "")
    return f"no code object for {device.processor} (it holds {shown or 'none'})"


def _count_kinds(rows: list[DeviceRow]) -> str:
    counts = {}
    for row in rows:
        counts[row.kind] = counts.get(row.kind, 0) + 1
    return ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items()))
