"""The default-stack image for gfx942 must pass validation (run here: no GPU, so GPU checks skip)."""

from __future__ import annotations

import json

import pytest

from rocstack.validate import validate_image

pytestmark = pytest.mark.slow

DEFAULT_IMAGE = "rocstack/local:gfx942-latest"


def test_default_stack_image_for_gfx942_passes(docker_engine, tmp_path):
    import docker.errors

    try:
        docker_engine.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{DEFAULT_IMAGE} is not built on this engine: `invoke build --arch gfx942` makes it "
                    "(tests/build builds it in CI before this runs)")
    outcome = validate_image(DEFAULT_IMAGE, tmp_path / "report")
    report = outcome.report
    assert report.verdict == "pass", json.dumps([c for c in report.checks if c["status"] in ("fail", "error")], indent=1)
    statuses = {c["name"]: c["status"] for c in report.checks}
    assert statuses["torch-variant"] == "pass" and statuses["import:rocstack-kernels"] == "pass"
    assert statuses["audit:rocstack-kernels"] == "pass"
    assert report.data["arches"] == ["gfx942"] and report.data["stack"] == "local"
    assert all(c["status"] == "skip" for c in report.checks if c["name"].endswith("[gpu]") or c["name"] == "gpu-arch")
