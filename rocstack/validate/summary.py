"""The table printed at the end of a validation run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rocstack.validate.markdown import gpu_line, level_line, targets_line
from rocstack.validate.report import Report

STYLE = {"pass": "green", "fail": "bold red", "error": "bold yellow", "skip": "dim"}
EVIDENCE_CHARS = 160


def print_summary(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"validation of {report.title}", show_lines=False, expand=False)
    for column in ("check", "status", "time", "evidence"):
        table.add_column(column, overflow="fold", justify="right" if column == "time" else "left")
    for check in report.checks:
        evidence = " ".join(check["evidence"].split())
        if len(evidence) > EVIDENCE_CHARS:
            evidence = evidence[: EVIDENCE_CHARS - 1] + "…"
        status = check["status"]
        table.add_row(escape(check["name"]), f"[{STYLE[status]}]{status.upper()}[/]", f"{check['duration_s']:.1f}s", escape(evidence))
    console.print(table)
    counts = report.counts()
    console.print(f"GPU: {escape(gpu_line(report))}")
    if targets_line(report):
        console.print(f"target arches: {escape(targets_line(report))}")
    console.print(f"level: {escape(level_line(report))}")
    console.print(
        f"verdict: [{STYLE.get(report.verdict, 'bold')}]{report.verdict.upper()}[/] "
        f"({counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, {counts['skip']} skip)"
    )
