"""Shared helpers of the build tests: a throw-away copy of the project to edit and build."""

from __future__ import annotations

import shutil
from pathlib import Path

from rocstack.build.context import PROJECT_ENTRIES

REPO = Path(__file__).resolve().parents[2]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".hypothesis")


def copy_project(target: Path, source: Path = REPO) -> Path:
    """Copy what a build uses (package, recipes, images, kernels, suite) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in PROJECT_ENTRIES:
        path = source / entry
        if path.is_dir():
            shutil.copytree(path, target / entry, ignore=_IGNORE)
        elif path.is_file():
            shutil.copy2(path, target / entry)
    return target
