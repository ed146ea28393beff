"""Fixtures for the registry tests (helpers live in regtest_support.py).

Everything created here is named ``rocstack-regtest*`` and removed at the end: images
by the ids this session built, registries by their pid and storage directory.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from regtest_support import PASSWORD, USER, ImageFactory, start_registry, stop_registry


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory):
    """Debian's docker-registry on a free 127.0.0.1 port, anonymous access."""
    server = start_registry(tmp_path_factory.mktemp("rocstack-regtest-registry"))
    yield server
    stop_registry(server)


@pytest.fixture(scope="session")
def auth_registry_server(tmp_path_factory):
    """docker-registry demanding basic auth (htpasswd, bcrypt) for USER/PASSWORD."""
    if not shutil.which("htpasswd"):
        pytest.skip("htpasswd is not installed (apt-get install -y apache2-utils)")
    root = tmp_path_factory.mktemp("rocstack-regtest-auth-registry")
    entry = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True).stdout
    (root / "htpasswd").write_text(entry.strip() + "\n")
    server = start_registry(root / "storage", root / "htpasswd")
    yield server
    stop_registry(server)


@pytest.fixture(autouse=True)
def docker_config(tmp_path, monkeypatch):
    """An empty Docker client config, so the developer's own logins never take part."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


@pytest.fixture(scope="session")
def images(docker_engine):
    factory = ImageFactory(docker_engine)
    yield factory
    factory.cleanup()


