"""The default-stack image for gfx942, built by `rocstack build` from this tree, must pass validation.

Built with the real build machinery under a test prefix (so the shared rocstack/* tags are
left alone); BuildKit's cache makes this quick after tests/build. No GPU here: the GPU
checks are skipped with the reason, never passed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rocstack.validate import validate_image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PREFIX = "rocstack-valtest-default"


@pytest.fixture(scope="module")
def default_image(docker_engine, tmp_path_factory):
    from rocstack.imaging.context import snapshot_project
    from rocstack.engine import buildkit_cli
    from rocstack.errors import EngineError

    try:
        buildkit_cli()
    except EngineError as exc:
        pytest.skip(exc.one_line())
    project = snapshot_project(REPO, tmp_path_factory.mktemp("project") / "rocstack")
    env = {**os.environ, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": PREFIX,
           "ROCSTACK_HOME": str(tmp_path_factory.mktemp("build-home"))}
    proc = subprocess.run(["rocstack", "build", "--arch", "gfx942", "--json"], capture_output=True, text=True,
                          env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)
    yield result["tags"][0]
    for tag in result["tags"]:  # only the tags this test made
        try:
            docker_engine.images.remove(tag)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_default_stack_image_for_gfx942_passes(default_image, tmp_path):
    outcome = validate_image(default_image, tmp_path / "report")
    report = outcome.report
    problems = [c for c in report.checks if c["status"] in ("fail", "error")]
    assert report.verdict == "pass", json.dumps(problems, indent=1)
    statuses = {c["name"]: c["status"] for c in report.checks}
    for name in ("audit:rocstack-kernels", "aot:rocstack-kernels", "import:rocstack-kernels", "version:rocstack-kernels",
                 "torch-variant", "pytest:rocstack-kernels[interpreter]"):
        assert statuses[name] == "pass", (name, statuses)
    assert report.data["arches"] == ["gfx942"] and report.data["stack"] == "local"
    skipped = [c for c in report.checks if c["name"].endswith("[gpu]") or c["name"] == "gpu-arch"]
    assert skipped and all(c["status"] == "skip" and "no GPU" in c["evidence"] for c in skipped)
