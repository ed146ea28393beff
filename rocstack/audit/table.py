"""Human-readable rendering of an AuditReport: findings per file, kernels, the coverage matrix.

Plain text (ANSI colour only on a terminal, never with NO_COLOR): the audit's import
path stays free of rich, so ``rocstack audit`` starts as fast as the tools it is
compared with.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

from rocstack.audit import demangle
from rocstack.audit.report import AuditReport, FileSummary

_MAX_KERNELS = 12  # per code object in the table; --json has them all
_MAX_QUIET = 8  # files without findings or kernels listed one per line; beyond that, only counted
_MAX_KERNEL_TABLES = 5  # more files with code objects than this: one summary line each instead
_MAX_ROWS = 40  # coverage rows shown; rows covered everywhere are counted beyond that
_STYLE = {"error": "1;31", "warning": "33", "info": "36", "pass": "1;32", "fail": "1;31", "dim": "2", "bold": "1",
          "covered": "32", "partial": "33", "missing": "31"}
_CELL = {"covered": "yes", "partial": "part", "missing": "--"}
_SOURCE = {"fatbin": "F", "bundle-file": "B", "code-object": "C", "kernel-database": "D", "kpack": "K"}


def printable(text: str) -> str:
    """Names read from a damaged file keep their undecodable bytes as surrogates (``surrogateescape``):
    shown as ``\\xNN``, since a UTF-8 terminal cannot encode them."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no decoder made
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Out:
    def __init__(self, stream, width: int | None, color: bool | None):
        self.stream = stream
        self.width = width or max(80, shutil.get_terminal_size((200, 24)).columns if stream.isatty() else 200)
        self.color = (stream.isatty() and "NO_COLOR" not in os.environ) if color is None else color

    def style(self, text: str, style: str) -> str:
        return f"\x1b[{_STYLE[style]}m{text}\x1b[0m" if self.color and style in _STYLE else text

    def line(self, text: str = "", style: str = "") -> None:
        self.stream.write((self.style(printable(text), style) if style else printable(text)) + "\n")

    def wrapped(self, text: str, indent: int, style: str = "") -> None:
        for part in textwrap.wrap(text, max(40, self.width - indent), break_long_words=True,
                                  break_on_hyphens=False) or [""]:
            self.line(" " * indent + (self.style(part, style) if style else part))


def _file_header(summary: FileSummary) -> str:
    details = [summary.kind]
    if summary.soname:
        details.append(f"soname {summary.soname}")
    if summary.versions_needed:
        details.append(" ".join(f"{k}_{v}" for k, v in sorted(summary.versions_needed.items())))
    if summary.fatbin is not None:
        if summary.fatbin.get("split"):
            details.append(f"device code split out ({summary.fatbin['split']})")
        else:
            targets = ", ".join(summary.fatbin["targets"]) or "no GPU targets"
            count = len(summary.fatbin["bundles"])
            details.append(f"{count} offload bundle{'s' if count != 1 else ''}: {targets}")
    return f"{summary.path}  ({'; '.join(details)})"


def _table(out: _Out, header: list[str], rows: list[list[str]], indent: int = 2) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out.line(" " * indent + "  ".join(h.ljust(w) for h, w in zip(header, widths)), "dim")
    for row in rows:
        out.line(" " * indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _kernels(out: _Out, summary: FileSummary) -> None:
    rows = [(obj, k) for obj in summary.code_objects for k in obj.kernels]
    if not rows:
        return
    rows.sort(key=lambda r: (r[1].occupancy if r[1].occupancy is not None else 99, r[1].name))
    out.line(f"  kernels ({len(rows)}, lowest occupancy first)", "dim")
    names = demangle.demangle_many(k.name for _obj, k in rows[:_MAX_KERNELS])
    table = []
    for obj, k in rows[:_MAX_KERNELS]:
        name = names[k.name]
        table.append([obj.target_id or "?", name if len(name) <= 70 else name[:67] + "...", _n(k.vgprs), _n(k.agprs),
                      _n(k.sgprs), str(k.vgpr_spills + k.sgpr_spills), str(k.lds_bytes), str(k.scratch_bytes),
                      _n(k.wavefront_size), _n(k.occupancy)])
    _table(out, ["target", "kernel", "VGPR", "AGPR", "SGPR", "spills", "LDS B", "scratch B", "wave", "waves/SIMD"], table)
    if len(rows) > _MAX_KERNELS:
        out.line(f"  {len(rows) - _MAX_KERNELS} more kernels in --json", "dim")


def _kernel_line(summary: FileSummary) -> str:
    kernels = [k for obj in summary.code_objects for k in obj.kernels]
    occupancy = [k.occupancy for k in kernels if k.occupancy is not None]
    targets = sorted({obj.target_id or "?" for obj in summary.code_objects})
    low = f", lowest occupancy {min(occupancy)} waves/SIMD" if occupancy else ""
    return f"{len(summary.code_objects)} code objects ({', '.join(targets)}), {len(kernels)} kernels{low}"


def _n(value) -> str:
    return "-" if value is None else str(value)


def _coverage(out: _Out, report: AuditReport) -> None:
    matrix = report.coverage
    if matrix is None or not matrix.rows:
        return
    arches = matrix.arches
    indexes = range(len(matrix.rows))
    sets = [i for i in indexes if matrix.rows[i].kind == "kernel-set"]
    many_sets = len(sets) > _MAX_ROWS // 2
    listed = [i for i in indexes if not (many_sets and matrix.rows[i].kind == "kernel-set")]
    listed.sort(key=lambda i: (all(c.status == "covered" for c in matrix.cells[i].values()), matrix.rows[i].kind,
                               matrix.rows[i].name))
    shown = listed[:_MAX_ROWS]
    name_width = max(20, min(70, out.width - 8 * len(arches) - 20))
    out.line()
    out.line(f"device code coverage ({len(matrix.rows)} rows; F fat binary, B bundle file, C code object, "
             "D kernel database, K kpack)", "bold")
    table = [[_short(matrix.rows[i].name, name_width), matrix.rows[i].kind,
              *(_mark(matrix.cells[i][arch]) for arch in arches)] for i in shown]
    if many_sets:
        for component in dict.fromkeys(matrix.rows[i].component for i in sets):
            mine = [i for i in sets if matrix.rows[i].component == component]
            counts = [f"{sum(matrix.cells[i][a].status == 'covered' for i in mine)}/{len(mine)}" for a in arches]
            table.append([_short(f"{len(mine)} kernel sets in {component}", name_width), "kernel-sets", *counts])
    if table:
        _table(out, ["library / kernel set / database", "kind", *arches], table)
    if len(listed) > len(shown):
        out.line(f"  {len(listed) - len(shown)} more rows (see --json)", "dim")
    _archives(out, matrix, shown, name_width)
    if any(c.generic for cells in matrix.cells for c in cells.values()):
        out.line("  * only through generic code objects (code object v6 runtimes)", "dim")
    for name, cells in matrix.components.items():
        summary = ", ".join(f"{arch} {status}" for arch, status in cells.items())
        out.wrapped(f"component {name}: {summary}", 2, "dim")


def _archives(out: _Out, matrix, shown: list[int], width: int) -> None:
    """Where each shown kpack row's code comes from, per arch (K in the matrix)."""
    lines = []
    for i in shown:
        per_arch = {arch: c.archives for arch, c in matrix.cells[i].items() if c.archives}
        if per_arch:
            lines.append(f"K {_short(matrix.rows[i].name, width)}: "
                         + "; ".join(f"{arch} from {', '.join(names)}" for arch, names in per_arch.items()))
    for line in lines[:_MAX_ROWS // 4]:
        out.wrapped(line, 2, "dim")
    if len(lines) > _MAX_ROWS // 4:
        out.line(f"  archives of {len(lines) - _MAX_ROWS // 4} more kpack rows in --json", "dim")


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]


def _mark(cell) -> str:
    mark = _CELL[cell.status]
    if cell.status != "missing":
        mark += " " + "".join(_SOURCE.get(s, "?") for s in cell.sources)
    return mark + ("*" if cell.generic else "")


def _declared(out: _Out, report: AuditReport) -> None:
    for entry in report.declared:
        delivered = entry.get("delivered")
        text = (f"{entry['package']} {entry['version']} declares {' '.join(entry['arches'])} ({entry['source']})"
                + ("" if delivered is None else f"; ships {', '.join(delivered) or 'nothing'}"))
        out.wrapped(text, 2, "dim")


def render(report: AuditReport, stream=None, width: int | None = None, color: bool | None = None) -> None:
    """Write the report as text to ``stream`` (stdout by default)."""
    out = _Out(stream or sys.stdout, width, color)
    known = {f.path for f in report.files}
    groups = [(f.path, f) for f in report.files]
    groups += [(path, None) for path in dict.fromkeys(x.file for x in report.findings) if path not in known]
    with_findings = {f.file for f in report.findings}
    quiet = [s for _p, s in groups if s and s.path not in with_findings]
    if len(quiet) > _MAX_QUIET:  # a site-packages audit: show what needs attention, count the rest
        groups = [(p, s) for p, s in groups if s not in quiet]
    else:
        quiet = []
    gpu_files = [s for _p, s in groups if s and s.code_objects]
    order = {"error": 0, "warning": 1, "info": 2}
    for path, summary in groups:
        findings = report.findings_for(path)
        out.line(_file_header(summary) if summary else path, "bold")
        for f in sorted(findings, key=lambda f: order[f.severity]):
            out.line(f"  {out.style(f.severity.upper().ljust(7), f.severity)} [{f.check}]")
            out.wrapped(f.message, 4)
            if f.evidence:
                out.wrapped(f.evidence, 4, "dim")
            if f.hint:
                out.wrapped("fix: " + f.hint, 4)
        if not findings and summary and summary.kind != "unreadable":
            out.line("  ok", "pass")
        if summary and summary.code_objects:
            if len(gpu_files) <= _MAX_KERNEL_TABLES:
                _kernels(out, summary)
            else:
                out.line("  " + _kernel_line(summary), "dim")
    if quiet:
        objects = sum(len(q.code_objects) for q in quiet)
        kernels = sum(len(o.kernels) for q in quiet for o in q.code_objects)
        gpu = f" ({objects} code objects, {kernels} kernels)" if objects else ""
        out.line(f"ok: {len(quiet)} more files without findings{gpu} (see --json)", "pass")
    _coverage(out, report)
    _declared(out, report)
    skipped = {k: v for k, v in report.checks.items() if v != "ran"}
    if skipped:
        out.wrapped("skipped: " + "; ".join(f"{k} ({v[9:]})" for k, v in skipped.items()), 0, "dim")
    counts = ", ".join(f"{report.count(s)} {s}s" for s in ("error", "warning", "info"))
    out.line(f"{report.verdict.upper()}: {len(report.files)} files audited, {counts} "
             f"(policy {report.policy}, sysroot {report.sysroot})", "pass" if report.verdict == "pass" else "fail")
