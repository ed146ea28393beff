"""A Markdown summary for terminals and pull requests."""

from __future__ import annotations

from rocstack.validate.coverage import coverage_markdown
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
        driver = f", driver {gpu['driver']}" if gpu.get("driver") else ""
        return f"{gpu.get('name')} ({gpu.get('target_id') or gpu.get('arch')}{driver})"
    return f"none ({gpu.get('reason') or (report.data.get('gpu_access') or {}).get('reason', 'unknown')})"


def level_line(report: Report) -> str:
    reason = report.data.get("level_reason")
    return f"{report.level}" + (f" ({reason})" if reason else "")


def targets_line(report: Report) -> str | None:
    targets = report.data.get("targets")
    if not isinstance(targets, dict):
        return None
    return f"{', '.join(targets.get('arches') or []) or 'none'} from {targets.get('source')}"


def what_to_fix(report: Report) -> list[dict]:
    """The failing and erroring checks, in report order: what a reader must act on."""
    return [c for c in report.checks if c["status"] in ("fail", "error")]


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
        f"- level: **{level_line(report)}**",
        *([f"- target arches: {targets_line(report)}"] if targets_line(report) else []),
        f"- checks: {counts['pass']} pass, {counts['fail']} fail, {counts['error']} error, {counts['skip']} skip "
        f"in {data['duration_s']:.1f} s (started {data.get('started')})",
        "",
        "| check | category | status | time | evidence |",
        "|---|---|---|---:|---|",
    ]
    for check in report.checks:
        lines.append(f"| `{check['name']}` | {check['category']} | {ICON[check['status']]} | "
                     f"{check['duration_s']:.2f} s | {_cell(check['evidence'])} |")
    if data.get("mode") in ("any-image", "rocstack-image") or data.get("coverage"):
        lines += ["", *coverage_markdown(data.get("coverage"))]
    problems = what_to_fix(report)
    if problems:
        lines += ["", "## What to fix", ""]
        for check in problems:
            lines.append(f"- **{check['name']}** ({ICON[check['status']]}): {check['evidence'].strip()}")
    for note in data.get("notes") or []:
        lines.append(f"\n> note: {note}")
    return "\n".join(lines) + "\n"
