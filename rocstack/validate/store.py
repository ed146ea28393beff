"""Write the report files atomically: all of them, or none.

Every file is written into a temporary sibling directory, which then takes the place
of ``--report DIR`` with renames; a crash or Ctrl-C leaves the previous reports (or
nothing), never a half-written set. The newest report.json of each image is also kept
at ``$ROCSTACK_HOME/reports/<image id hex>/report.json`` (temp file + os.replace),
where ``push`` finds it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from rocstack.errors import RocstackError
from rocstack.validate.html import render_html
from rocstack.validate.junit import render_junit
from rocstack.validate.markdown import render_markdown
from rocstack.validate.report import Report

REPORT_FILES = ("report.json", "junit.xml", "summary.md", "report.html")


def report_json(report: Report) -> str:
    return json.dumps(report.data, indent=2, sort_keys=False, default=str) + "\n"


def render_all(report: Report) -> dict[str, str]:
    return {
        "report.json": report_json(report),
        "junit.xml": render_junit(report),
        "summary.md": render_markdown(report),
        "report.html": render_html(report),
    }


def write_report_dir(report: Report, directory: Path) -> Path:
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise RocstackError(f"--report {directory} is a file, not a directory", "pass a directory path")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    except OSError as exc:
        raise RocstackError(f"cannot write reports under {directory.parent}: {exc.strerror}", "pass a writable --report DIR") from None
    old = None
    try:
        for name, text in render_all(report).items():
            (staging / name).write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            os.rename(directory, old / "previous")
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and (old / "previous").exists() and not directory.exists():
            os.rename(old / "previous", directory)  # put the previous reports back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return directory


def save_home_copy(report: Report) -> Path | None:
    """Keep the newest report of an image under $ROCSTACK_HOME; local runs have no image id."""
    image = report.data.get("image")
    if not image:
        return None
    from rocstack.registry.config import rocstack_home

    folder = rocstack_home() / "reports" / image["id"].split(":", 1)[-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report.json.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(report_json(report))
        os.replace(tmp, folder / "report.json")
    except OSError as exc:
        raise RocstackError(f"cannot keep the report under {folder}: {exc.strerror}", "make $ROCSTACK_HOME writable") from None
    return folder / "report.json"
