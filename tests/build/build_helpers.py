"""Shared helpers of the build tests: a throw-away copy of the project to edit and build."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run_cli
from rocstack.build.context import snapshot_project

REPO = Path(__file__).resolve().parents[2]


def copy_project(target: Path, source: Path = REPO) -> Path:
    """Copy what a build uses (package, recipes, images, kernels, suite) to ``target``."""
    return snapshot_project(source, target)


def cli_build(env: dict, *args: str) -> dict:
    """``rocstack build ARGS --json`` in a subprocess; the parsed result (fails the test on error)."""
    result = run_cli("build", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)
