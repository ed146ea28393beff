"""Shared fixtures: an isolated ROCSTACK_HOME, and the real Docker engine when one answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def rocstack_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("rocstack-home")
    monkeypatch.setenv("ROCSTACK_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def docker_engine():
    """A docker SDK client on the real engine; skips (with the reason) when none answers."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine here"
        pytest.skip(f"no Docker engine answers ({exc.__class__.__name__}); start one with scripts/start-dockerd.sh")
    return client


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `rocstack` console command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(["rocstack", *args], capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=600)
