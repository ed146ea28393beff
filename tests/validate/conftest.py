"""Fixtures for the validation tests: the shared runtime image of the broken-image cases."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

# The suite's unit tests import rocstack_validation; a checkout without `pip install ./validation`
# still runs them from the source tree (the images install it for real).
if importlib.util.find_spec("rocstack_validation") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "validation"))
# the kpack fixtures (libraries split by the upstream tool, TheRock's layout) are shared with tests/audit
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "audit"))


@pytest.fixture(scope="session")
def valtest_runtime(docker_engine):
    """rocstack-valtest-runtime:<hash>, built once (debootstrap base + CPU torch + this checkout)."""
    import valtest_images

    if shutil.which("debootstrap") is None and not valtest_images._has_image(docker_engine, valtest_images.BASE_TAG):
        pytest.skip("debootstrap is not installed (apt-get install -y debootstrap): cannot make the test base image")
    tag = valtest_images.ensure_runtime(docker_engine)
    yield tag
    # older runtimes could not go while case images still stood on them; now they can
    valtest_images.remove_stale(docker_engine, valtest_images.RUNTIME_REPO, tag)
