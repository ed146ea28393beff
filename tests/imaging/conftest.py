"""Fixtures of the build tests: the real engine (or a skip saying why) and shared build settings."""

from __future__ import annotations

import pytest

from build_helpers import TEST_PREFIX, cli_build, copy_project
from rocstack.engine import buildkit_cli, connect
from rocstack.errors import EngineError



@pytest.fixture(scope="session")
def docker_engine():
    """A docker SDK client on a real engine with a BuildKit-capable CLI; skips with the reason otherwise."""
    try:
        client = connect(timeout=900)
        buildkit_cli()
    except EngineError as exc:
        pytest.skip(exc.one_line())
    return client


@pytest.fixture(scope="session")
def build_home(tmp_path_factory):
    """One ROCSTACK_HOME for all end-to-end builds, so they share the staged context."""
    return tmp_path_factory.mktemp("rocstack-build-home")


@pytest.fixture(scope="session")
def project_snapshot(tmp_path_factory):
    """A copy of the project taken once per session: builds see a tree nobody edits meanwhile."""
    return copy_project(tmp_path_factory.mktemp("project") / "rocstack")


@pytest.fixture(scope="session")
def build_env(docker_engine, build_home, project_snapshot):
    yield {"ROCSTACK_HOME": str(build_home), "ROCSTACK_IMAGE_PREFIX": TEST_PREFIX, "ROCSTACK_ROOT": str(project_snapshot)}
    for image in docker_engine.images.list():
        for tag in image.tags:
            if tag.startswith(TEST_PREFIX + "/"):
                docker_engine.images.remove(tag)


@pytest.fixture(scope="session")
def gfx942_image(docker_engine, build_env):
    """The default stack built for gfx942 (the `rocstack build --json` result)."""
    return cli_build(build_env, "--arch", "gfx942")


@pytest.fixture(scope="session")
def gfx90a_gfx942_image(docker_engine, build_env):
    return cli_build(build_env, "--arch", "gfx90a,gfx942")
