"""A Markdown summary for terminals and pull requests."""

from __future__ import annotations

from rocstack.validate.report import Report

ICON = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}
EVIDENCE_CHARS = 240


def _cell(text: str, limit: int = EVIDENCE_CHARS) -> str:
    one = " ".join(str(text).split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return one.replace("|", "\\|")


def gpu_line(report: Report) -> str:
    gpu = report.data.get("environment", {}).get("gpu") or {}
    if gpu.get("available"):
        return f"{gpu.get('name')} ({gpu.get('target_id') or gpu.get('arch')})"
    return f"none ({gpu.get('reason') or (report.data.get('gpu_access') or {}).get('reason', 'unknown')})"


def render_markdown(report: Report) -> str:
    data = report.data
    counts = report.counts()
    image = data.get("image")
    lines = [
        f"# Validation: {report.title} — **{report.verdict.upper()}**",
        "",
        f"- image: `{image['id']}`" if image else "- target: local environment",
    ]
    if image and image.get("repo_digests"):
        lines.append(f"- digests: {', '.join(f'`{d}`' for d in image['repo_digests'])}")
    lines += [
        f"- stack: `{data.get('stack')}`, arches: {', '.join(data.get('arches') or []) or 'none'}",
        f"- GPU: {gpu_line(report)}",
        f"- checks: {counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, {counts['skip']} skip "
        f"in {data['duration_s']:.1f} s (started {data.get('started')})",
        "",
        "| check | category | status | time | evidence |",
        "|---|---|---|---:|---|",
    ]
    for check in report.checks:
        lines.append(f"| `{check['name']}` | {check['category']} | {ICON[check['status']]} | "
                     f"{check['duration_s']:.2f} s | {_cell(check['evidence'])} |")
    problems = [c for c in report.checks if c["status"] in ("fail", "error")]
    if problems:
        lines += ["", "## What to fix", ""]
        for check in problems:
            lines.append(f"- **{check['name']}** ({ICON[check['status']]}): {check['evidence'].strip()}")
    for note in data.get("notes") or []:
        lines.append(f"\n> note: {note}")
    return "\n".join(lines) + "\n"
