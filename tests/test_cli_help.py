"""`--help` works for every task and sub-task, through `rocstack` and through `invoke`."""

from __future__ import annotations

import subprocess

import pytest

from cli_runner import REPO, run_cli
from rocstack.cli.collection import build_collection


def _task_names() -> list[str]:
    return sorted(build_collection().task_names)


def test_every_task_is_listed():
    names = _task_names()
    for expected in ("audit", "build", "validate", "push", "pull", "images", "render", "kernels.build", "keys.trust"):
        assert expected in names


@pytest.mark.parametrize("name", _task_names())
def test_rocstack_task_help(name):
    words = name.split(".")  # `rocstack kernels build --help`, as people type it
    result = run_cli(*words, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: rocstack [--core-opts] {name}" in result.stdout and "Traceback" not in result.stderr
    assert run_cli(*words, "--arch", "gfx942", "-h").returncode == 0  # anywhere on the line


@pytest.mark.parametrize("name", _task_names())
def test_invoke_task_help(name):
    result = subprocess.run(["invoke", name, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"[--core-opts] {name}" in result.stdout and "Docstring:" in result.stdout
    assert "Traceback" not in result.stderr
