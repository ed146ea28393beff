"""What a validation says to a CI runner: GitHub Actions annotations and step summary.

GitHub shows at most 10 error (and 10 warning) annotations per step and 50 per job;
more are dropped silently. So at most :data:`MAX_ERRORS` ``::error`` lines are written
for the failing checks (all images of the run together), then one line summarising the
rest; a static-only validation is one ``::warning``. The step summary
(``$GITHUB_STEP_SUMMARY``, Markdown, appended) gets one table row per image and the
checks to fix. GitLab has no annotations: its log folds the task's sections
(``rocstack.log``) and its reports are the JUnit and SARIF files.
"""

from __future__ import annotations

import os
from typing import TextIO

from rocstack.contracts import STATIC_ONLY
from rocstack.log import detect_ci
from rocstack.validate.markdown import gpu_line, what_to_fix
from rocstack.validate.report import Report

MAX_ERRORS = 10  # GitHub's limit per step and annotation type
MAX_WARNINGS = 10
MESSAGE_CHARS = 900
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **properties: str) -> str:
    props = ",".join(f"{k}={_escape_property(v)}" for k, v in properties.items() if v)
    one_line = " ".join(message.split())
    if len(one_line) > MESSAGE_CHARS:
        one_line = one_line[: MESSAGE_CHARS - 1] + "…"
    return f"::{kind}{' ' + props if props else ''}::{_escape_data(one_line)}"


def github_annotations(reports: list[Report]) -> list[str]:
    """The workflow commands for these reports, within GitHub's per-step limits."""
    failing = [(r, c) for r in reports for c in what_to_fix(r)]
    lines = []
    shown = failing if len(failing) <= MAX_ERRORS else failing[: MAX_ERRORS - 1]
    for report, check in shown:
        lines.append(_command("error", f"{check['status'].upper()}: {check['evidence']}",
                              title=f"{report.title}: {check['name']}"))
    if len(shown) < len(failing):
        rest = failing[len(shown):]
        names = ", ".join(c["name"] for _, c in rest[:20]) + (" ..." if len(rest) > 20 else "")
        lines.append(_command("error", f"{len(rest)} more failing check(s), not annotated (GitHub shows {MAX_ERRORS} "
                                       f"per step): {names}. The step summary and report.sarif list them all.",
                              title="rocstack validate"))
    warnings = [r for r in reports if r.level == STATIC_ONLY and r.verdict == "pass"]
    for report in warnings[:MAX_WARNINGS]:
        lines.append(_command("warning", f"validation passed static-only: {report.data.get('level_reason')}. "
                                         "Run it where the container can use a GPU, or require it with --require-gpu.",
                              title=f"{report.title}: static-only"))
    return lines


def step_summary(reports: list[Report]) -> str:
    lines = ["## rocstack validate", "", "| image | verdict | level | pass | fail | error | skip | GPU |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for report in reports:
        counts = report.counts()
        lines.append(f"| `{report.title}` | **{report.verdict.upper()}** | {report.level} | {counts['pass']} | "
                     f"{counts['fail']} | {counts['error']} | {counts['skip']} | {gpu_line(report).replace('|', '/')} |")
    for report in reports:
        problems = what_to_fix(report)
        if problems:
            lines += ["", f"### What to fix in `{report.title}`", ""]
            for check in problems[:50]:
                evidence = " ".join(check["evidence"].split())[:400]
                lines.append(f"- **{check['name']}** ({check['status'].upper()}): {evidence}")
            if len(problems) > 50:
                lines.append(f"- … {len(problems) - 50} more in the report")
    return "\n".join(lines) + "\n"


def report_to_ci(reports: list[Report], stream: TextIO, environ=None) -> None:
    """On GitHub Actions: annotations on ``stream`` and a step-summary table. Elsewhere: nothing."""
    environ = os.environ if environ is None else environ
    if detect_ci(environ) != "github":
        return
    for line in github_annotations(reports):
        print(line, file=stream, flush=True)
    summary = environ.get(SUMMARY_ENV)
    if summary:
        from rocstack.fsutil import append_text

        append_text(summary, step_summary(reports))
