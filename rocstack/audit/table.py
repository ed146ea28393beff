"""Human-readable rendering of an AuditReport with rich: grouped by file, colored by severity."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rocstack.audit import demangle
from rocstack.audit.report import AuditReport, FileSummary

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_MAX_KERNELS = 12  # per code object in the table; --json has them all
_MAX_QUIET = 8  # files without findings or kernels listed one per line; beyond that, only counted
_MAX_KERNEL_TABLES = 5  # more files with code objects than this: one summary line each instead


def _file_header(summary: FileSummary) -> Text:
    text = Text(summary.path, style="bold")
    details = [summary.kind]
    if summary.soname:
        details.append(f"soname {summary.soname}")
    if summary.versions_needed:
        details.append(" ".join(f"{k}_{v}" for k, v in sorted(summary.versions_needed.items())))
    if summary.fatbin is not None:
        targets = ", ".join(summary.fatbin["targets"]) or "no GPU targets"
        count = len(summary.fatbin["bundles"])
        details.append(f"{count} offload bundle{'s' if count != 1 else ''}: {targets}")
    text.append("  (" + "; ".join(details) + ")", style="dim")
    return text


def _kernel_table(summary: FileSummary) -> Table | None:
    rows = [(obj, k) for obj in summary.code_objects for k in obj.kernels]
    if not rows:
        return None
    rows.sort(key=lambda r: (r[1].occupancy if r[1].occupancy is not None else 99, r[1].name))
    table = Table(title=f"kernels ({len(rows)}, lowest occupancy first)", title_justify="left", show_edge=False)
    for column in ("target", "kernel", "VGPR", "AGPR", "SGPR", "spills", "LDS B", "scratch B", "wave", "waves/SIMD"):
        table.add_column(column, overflow="fold")
    names = demangle.demangle_many(k.name for _obj, k in rows[:_MAX_KERNELS])
    for obj, k in rows[:_MAX_KERNELS]:
        spills = k.vgpr_spills + k.sgpr_spills
        table.add_row(
            Text(obj.target_id or "?"), Text(names[k.name]), _n(k.vgprs), _n(k.agprs), _n(k.sgprs),
            Text(str(spills), style="yellow" if spills else ""), str(k.lds_bytes),
            Text(str(k.scratch_bytes), style="yellow" if k.scratch_bytes else ""), _n(k.wavefront_size),
            _n(k.occupancy),
        )
    if len(rows) > _MAX_KERNELS:
        table.caption = f"{len(rows) - _MAX_KERNELS} more kernels in --json"
    return table


def _kernel_line(summary: FileSummary) -> str:
    kernels = [k for obj in summary.code_objects for k in obj.kernels]
    occupancy = [k.occupancy for k in kernels if k.occupancy is not None]
    targets = sorted({obj.target_id or "?" for obj in summary.code_objects})
    low = f", lowest occupancy {min(occupancy)} waves/SIMD" if occupancy else ""
    return f"{len(summary.code_objects)} code objects ({', '.join(targets)}), {len(kernels)} kernels{low}"


def _n(value) -> str:
    return "-" if value is None else str(value)


def render(report: AuditReport, console: Console | None = None) -> None:
    console = console or Console()
    known = {f.path for f in report.files}
    groups = [(f.path, f) for f in report.files]
    groups += [(path, None) for path in dict.fromkeys(x.file for x in report.findings) if path not in known]
    with_findings = {f.file for f in report.findings}
    quiet = [s for _p, s in groups if s and s.path not in with_findings and not s.code_objects]
    if len(quiet) > _MAX_QUIET:  # a site-packages audit: show what needs attention, count the rest
        groups = [(p, s) for p, s in groups if s not in quiet]
    else:
        quiet = []
    gpu_files = [s for _p, s in groups if s and s.code_objects]
    for path, summary in groups:
        findings = report.findings_for(path)
        console.print(_file_header(summary) if summary else Text(path, style="bold"))
        if findings:
            table = Table(show_header=True, show_edge=False, pad_edge=False)
            for column in ("severity", "check", "finding", "fix"):
                table.add_column(column, overflow="fold")
            for f in sorted(findings, key=lambda f: ("error", "warning", "info").index(f.severity)):
                message = Text(f.message)  # Text, not markup: C++ names contain [abi:cxx11]
                if f.evidence:
                    message.append("\n" + f.evidence, style="dim")
                table.add_row(Text(f.severity, style=_STYLE[f.severity]), Text(f.check), message, Text(f.hint))
            console.print(table)
        elif summary and summary.kind != "unreadable":
            console.print(Text("  ok", style="green"))
        if summary and summary.code_objects:
            if len(gpu_files) <= _MAX_KERNEL_TABLES:
                kernels = _kernel_table(summary)
                if kernels:
                    console.print(kernels)
            else:
                console.print(Text("  " + _kernel_line(summary), style="dim"))
    if quiet:
        console.print(Text(f"ok: {len(quiet)} more files without findings (see --json)", style="green"))
    skipped = {k: v for k, v in report.checks.items() if v != "ran"}
    if skipped:
        console.print(Text("skipped: " + "; ".join(f"{k} ({v[9:]})" for k, v in skipped.items()), style="dim"))
    counts = ", ".join(f"{report.count(s)} {s}s" for s in ("error", "warning", "info"))
    style = {"pass": "bold green", "fail": "bold red", "error": "bold red"}[report.verdict]
    console.print(Text(f"{report.verdict.upper()}: {len(report.files)} files audited, {counts} "
                       f"(policy {report.policy}, sysroot {report.sysroot})", style=style))
