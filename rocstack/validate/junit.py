"""JUnit XML for CI systems: one testsuite per check category, one testcase per check.

fail -> <failure>, error -> <error>, skip -> <skipped> (with the reason): the same
mapping pytest uses, so CI dashboards show skips as skips.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rocstack.validate.report import Report

CATEGORY_ORDER = ("audit", "python", "correctness", "performance")


def _message(evidence: str) -> str:
    first = evidence.strip().splitlines()[0] if evidence.strip() else ""
    return first[:500]


def render_junit(report: Report) -> str:
    categories = list(CATEGORY_ORDER) + sorted({c["category"] for c in report.checks} - set(CATEGORY_ORDER))
    root = ET.Element("testsuites", name=f"rocstack validation: {report.title} ({report.level})")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for category in categories:
        checks = [c for c in report.checks if c["category"] == category]
        if not checks:
            continue
        suite = ET.SubElement(root, "testsuite", name=f"rocstack.validation.{category}")
        counts = {"tests": len(checks), "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        for check in checks:
            case = ET.SubElement(suite, "testcase", name=check["name"],
                                 classname=f"rocstack.validation.{category}", time=f"{check['duration_s']:.3f}")
            counts["time"] += check["duration_s"]
            tag = {"fail": "failure", "error": "error", "skip": "skipped"}.get(check["status"])
            if tag:
                node = ET.SubElement(case, tag, message=_message(check["evidence"]))
                node.text = check["evidence"]
                counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
            else:
                ET.SubElement(case, "system-out").text = check["evidence"]
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
