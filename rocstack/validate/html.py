"""A self-contained HTML report: inline CSS, tables, plots embedded as base64 PNG."""

from __future__ import annotations

import html
import json

from rocstack.validate.coverage import coverage_html
from rocstack.validate.markdown import gpu_line, level_line, targets_line, what_to_fix
from rocstack.validate.plots import attention_speedup_figure, perf_floor_figure
from rocstack.validate.report import Report

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f2f2f2} td.evidence{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
.pass{background:#e8f5e9}.fail{background:#ffebee}.error{background:#fff3e0}.skip{background:#f5f5f5;color:#666}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:bold}
.verdict.pass{background:#2e7d32;color:#fff}.verdict.fail{background:#c62828;color:#fff}
.verdict.error{background:#ef6c00;color:#fff}
.level{display:inline-block;padding:2px 10px;border-radius:4px;border:1px solid #555;margin-left:8px}
table.heatmap td.cell,span.cell{color:#fff;text-align:center;font-weight:bold;padding:2px 8px}
ul.fix li{margin:0.4em 0} ul.fix code{font-size:13px}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _facts(report: Report) -> str:
    data = report.data
    image = data.get("image") or {}
    rows = [("image", image.get("id", "local environment")), ("tags", ", ".join(image.get("tags") or []) or "-"),
            ("digests", ", ".join(image.get("repo_digests") or []) or "-"), ("stack", data.get("stack")),
            ("arches", ", ".join(data.get("arches") or [])), ("target arches", targets_line(report) or "-"),
            ("GPU", gpu_line(report)), ("level", level_line(report)),
            ("started", data.get("started")), ("duration", f"{data['duration_s']:.1f} s"),
            ("rocstack", data.get("rocstack_version"))]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _findings(check: dict) -> str:
    """The audit's findings of one check as a nested table: what, where, and the fix."""
    findings = (check.get("details") or {}).get("findings") or []
    if not findings:
        return ""
    rows = "".join(
        f"<tr><td>{_e(f.get('severity'))}</td><td>{_e(f.get('check'))}</td><td>{_e(f.get('file'))}</td>"
        f"<td>{_e(f.get('message'))}</td><td>{_e(f.get('hint'))}</td></tr>" for f in findings)
    return (f"<details><summary>{len(findings)} finding(s)</summary><table><tr><th>severity</th><th>check</th>"
            f"<th>file</th><th>finding</th><th>fix</th></tr>{rows}</table></details>")


def _checks_table(report: Report) -> str:
    head = "<tr><th>check</th><th>category</th><th>status</th><th>time</th><th>evidence</th></tr>"
    rows = "".join(
        f"<tr class='{c['status']}'><td>{_e(c['name'])}</td><td>{_e(c['category'])}</td>"
        f"<td>{_e(c['status'].upper())}</td><td>{c['duration_s']:.2f}&nbsp;s</td>"
        f"<td class='evidence'>{_e(c['evidence'])}{_findings(c)}</td></tr>"
        for c in report.checks)
    return f"<table>{head}{rows}</table>"


def _benchmark_table(benchmarks: dict | None) -> str:
    """The kernel harness's metrics, then each recipe benchmark's (``components``), one row per metric."""
    rows = [("rocstack-kernels", k, v) for k, v in sorted(((benchmarks or {}).get("metrics") or {}).items())]
    for component, data in sorted(((benchmarks or {}).get("components") or {}).items()):
        rows += [(component, k, v) for k, v in sorted((data.get("metrics") or {}).items())]
    if not rows:
        return ""
    cells = "".join(f"<tr><td>{_e(c)}</td><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for c, k, v in rows)
    return f"<h2>Benchmark metrics</h2><table><tr><th>benchmark</th><th>metric</th><th>value</th></tr>{cells}</table>"


def _what_to_fix(report: Report) -> str:
    problems = what_to_fix(report)
    if not problems:
        return ""
    items = []
    for check in problems:
        hints = sorted({f.get("hint") for f in (check.get("details") or {}).get("findings") or [] if f.get("hint")})[:3]
        fix = f"<br><b>fix:</b> {_e(' / '.join(hints))}" if hints else ""
        items.append(f"<li><code>{_e(check['name'])}</code> ({_e(check['status'].upper())}): {_e(check['evidence'].strip())}{fix}</li>")
    return f"<h2>What to fix</h2><ul class='fix'>{''.join(items)}</ul>"


def _figure(png: str | None, alt: str) -> str:
    return f"<p><img alt='{_e(alt)}' src='data:image/png;base64,{png}'></p>" if png else ""


def render_html(report: Report) -> str:
    counts = report.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    perf = _figure(perf_floor_figure(report.checks), "performance vs floors")
    attention = _figure(attention_speedup_figure(report.data.get("benchmarks")), "attention speedup vs sequence length")
    plots = f"<h2>Performance</h2>{perf}{attention}" if (perf or attention) else (
        "<h2>Performance</h2><p>No benchmark data: " + _e(next(
            (c["evidence"] for c in report.checks if c["category"] == "performance"), "no perf floors in the recipes")) + "</p>")
    raw = _e(json.dumps({k: v for k, v in report.data.items() if k not in ("checks", "coverage")}, indent=2, default=str))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>rocstack validation: {_e(report.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>Validation of {_e(report.title)} <span class='verdict {report.verdict}'>{report.verdict.upper()}</span>"
        f"<span class='level'>{_e(report.level)}</span></h1>"
        f"<p>{_e(summary)}</p>{_facts(report)}{_what_to_fix(report)}<h2>Checks</h2>{_checks_table(report)}"
        f"{coverage_html(report.data.get('coverage')) if report.data.get('mode') != 'local' else ''}"
        f"{plots}{_benchmark_table(report.data.get('benchmarks'))}"
        f"<details><summary>report metadata</summary><pre>{raw}</pre></details></body></html>\n"
    )
