"""Shared fixtures: an isolated ROCSTACK_HOME, and the real Docker engine when one answers."""

from __future__ import annotations

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
