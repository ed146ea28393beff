"""Several images validated in one run, side by side: which passes, at which level, on which arches.

``rocstack validate --image A --image B --report DIR`` writes each image's reports to
``DIR/<n>-<name>/`` and this comparison to ``DIR/comparison.{json,md,html}``: one column
per image; rows for the verdict, level, targets, GPU, Python, then every check by name
(``-`` where an image has no such check) and the coverage of each arch.
"""

from __future__ import annotations

import html
import json
import re

from rocstack.validate.coverage import totals
from rocstack.validate.markdown import gpu_line
from rocstack.validate.report import Report

SCHEMA = "rocstack.validation-comparison/v1"
ICON = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}


def folder_name(index: int, report: Report) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", report.title).strip("_")[:60] or "image"
    return f"{index + 1}-{slug}"


def _coverage_cell(report: Report, arch: str) -> str:
    counts = totals(report.data.get("coverage")).get(arch)
    if not counts:
        return "-"
    return f"{counts['covered']} covered, {counts['partial']} partial, {counts['missing']} missing"


def comparison_rows(reports: list[Report]) -> list[tuple[str, list[str]]]:
    rows = [
        ("verdict", [r.verdict.upper() for r in reports]),
        ("level", [r.level for r in reports]),
        ("target arches", [", ".join(r.data.get("arches") or []) or "-" for r in reports]),
        ("targets from", [str((r.data.get("targets") or {}).get("source") or r.data.get("mode") or "-") for r in reports]),
        ("GPU", [gpu_line(r) for r in reports]),
        ("Python", [str((r.data.get("python") or {}).get("path") or ("none" if r.data.get("mode") == "any-image" else "suite"))
                    for r in reports]),
    ]
    names = list(dict.fromkeys(c["name"] for r in reports for c in r.checks))
    for name in names:
        cells = []
        for report in reports:
            check = next((c for c in report.checks if c["name"] == name), None)
            cells.append(ICON[check["status"]] if check else "-")
        rows.append((name, cells))
    arches = list(dict.fromkeys(a for r in reports for a in totals(r.data.get("coverage"))))
    rows += [(f"coverage {arch}", [_coverage_cell(r, arch) for r in reports]) for arch in arches]
    return rows


def comparison_json(reports: list[Report], folders: list[str]) -> str:
    data = {"schema": SCHEMA, "images": [{"reference": r.data.get("reference"), "image": r.data.get("image"),
                                          "verdict": r.verdict, "level": r.level, "report": f"{f}/report.json"}
                                         for r, f in zip(reports, folders)],
            "rows": [{"name": name, "cells": cells} for name, cells in comparison_rows(reports)]}
    return json.dumps(data, indent=2) + "\n"


def comparison_markdown(reports: list[Report], folders: list[str]) -> str:
    head = " | ".join(f"[`{r.title}`]({f}/summary.md)" for r, f in zip(reports, folders))
    lines = ["# Validation comparison", "", f"| | {head} |", "|---|" + "---|" * len(reports)]
    for name, cells in comparison_rows(reports):
        lines.append(f"| {name} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_html(reports: list[Report], folders: list[str]) -> str:
    e = lambda text: html.escape(str(text), quote=True)  # noqa: E731
    head = "".join(f"<th><a href='{e(f)}/report.html'>{e(r.title)}</a></th>" for r, f in zip(reports, folders))
    body = []
    for name, cells in comparison_rows(reports):
        tds = "".join(f"<td class='{e(c.lower())}'>{e(c)}</td>" for c in cells)
        body.append(f"<tr><th>{e(name)}</th>{tds}</tr>")
    css = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}th,td{border:1px solid #ccc;"
           "padding:4px 8px;text-align:left}.pass{background:#e8f5e9}.fail{background:#ffebee}.error{background:#fff3e0}"
           ".skip{background:#f5f5f5;color:#666}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>rocstack validation comparison</title>"
            f"<style>{css}</style></head><body><h1>Validation comparison</h1><table><tr><th></th>{head}</tr>"
            f"{''.join(body)}</table></body></html>\n")
