"""Write the report files atomically: all of them, or none.

``--report DIR`` is replaced whole (``fsutil.write_tree_atomic``): a crash or Ctrl-C
leaves the previous reports (or nothing), never a half-written set. The newest
report.json of each image is also kept at ``$ROCSTACK_HOME/reports/<image id
hex>/report.json`` (``fsutil.write_atomic``), where ``push`` finds it.
"""

from __future__ import annotations

import json
from pathlib import Path

from rocstack.contracts import reports_dir
from rocstack.errors import RocstackError
from rocstack.fsutil import check_writable, write_atomic, write_tree_atomic
from rocstack.validate.html import render_html
from rocstack.validate.junit import render_junit
from rocstack.validate.markdown import render_markdown
from rocstack.validate.report import Report
from rocstack.validate.sarif import render_sarif

REPORT_FILES = ("report.json", "junit.xml", "summary.md", "report.html", "report.sarif")


def report_json(report: Report) -> str:
    return json.dumps(report.data, indent=2, sort_keys=False, default=str) + "\n"


def render_all(report: Report) -> dict[str, str]:
    return {
        "report.json": report_json(report),
        "junit.xml": render_junit(report),
        "summary.md": render_markdown(report),
        "report.html": render_html(report),
        "report.sarif": render_sarif(report),
    }


def check_report_dir(directory: str | Path) -> Path:
    """Refuse a --report path that cannot become the report directory (a file, an unwritable parent)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RocstackError(f"--report {directory} is a file, not a directory", "pass a directory path")
    check_writable(directory / REPORT_FILES[0], "--report")
    return directory


def write_report_dir(report: Report, directory: Path) -> Path:
    return write_tree_atomic(check_report_dir(directory), render_all(report))


def write_comparison_dir(reports: list[Report], directory: Path) -> Path:
    """Each image's report set in ``<n>-<name>/`` and the side-by-side comparison, replaced as one set."""
    from rocstack.validate.compare import comparison_html, comparison_json, comparison_markdown, folder_name

    folders = [folder_name(i, r) for i, r in enumerate(reports)]
    files = {f"{folder}/{name}": content for folder, report in zip(folders, reports)
             for name, content in render_all(report).items()}
    files.update({"comparison.json": comparison_json(reports, folders), "comparison.md": comparison_markdown(reports, folders),
                  "comparison.html": comparison_html(reports, folders)})
    return write_tree_atomic(check_report_dir(directory), files)


def save_home_copy(report: Report) -> Path | None:
    """Keep the newest report of an image under $ROCSTACK_HOME; local runs have no image id."""
    image = report.data.get("image")
    if not image:
        return None
    return write_atomic(reports_dir() / image["id"].split(":", 1)[-1] / "report.json", report_json(report))
