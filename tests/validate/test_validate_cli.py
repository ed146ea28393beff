"""The validate task as users run it: usage errors, a missing image, a stopped engine (one line, exit 2)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `rocstack` console command, in a subprocess."""
    return subprocess.run(["rocstack", *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=REPO, timeout=900)


def _one_line_error(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_needs_exactly_one_target():
    proc = run_cli("validate")
    assert proc.returncode == 2 and "--image IMG (one or more) or --local" in _one_line_error(proc)
    proc = run_cli("validate", "--image", "x", "--local")
    assert proc.returncode == 2


def test_engine_down_is_one_line_with_the_fix(tmp_path):
    proc = run_cli("validate", "--image", "rocstack/local:gfx942-latest", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert proc.returncode == 2 and "start-dockerd.sh" in _one_line_error(proc)


@pytest.mark.slow
def test_missing_image_is_one_line_with_the_fix(docker_engine, tmp_path):
    proc = run_cli("validate", "--image", "rocstack-valtest-does-not-exist:nope", "--report", str(tmp_path / "r"))
    line = _one_line_error(proc)
    assert proc.returncode == 2 and "not in the local engine" in line and "rocstack build" in line
    assert not (tmp_path / "r").exists()  # nothing half-written


@pytest.mark.slow
def test_image_without_the_suite_or_anything_to_audit_is_an_error(docker_engine, tmp_path):
    """An image rocstack did not build is validated from outside; one with nothing to audit is no pass."""
    import valtest_images

    if not valtest_images._has_image(docker_engine, valtest_images.BASE_TAG):
        pytest.skip(f"{valtest_images.BASE_TAG} not built yet (the broken-image tests build it)")
    proc = run_cli("validate", "--image", valtest_images.BASE_TAG, "--arch", "gfx942", "--report", str(tmp_path / "r"))
    report = (tmp_path / "r" / "report.json").read_text()
    assert proc.returncode == 2 and '"verdict": "error"' in report and "0 files audited is not a pass" in report


def test_report_path_that_is_a_file_is_refused_before_the_run(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    proc = run_cli("validate", "--image", "rocstack-valtest-does-not-exist:nope", "--report", str(target),
                   env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})  # refused before the engine is asked
    assert proc.returncode == 2 and "is a file, not a directory" in _one_line_error(proc)
    assert target.read_text() == "keep me"


def test_bad_arch_is_refused_before_the_run(tmp_path):
    proc = run_cli("validate", "--image", "x", "--arch", "gfx9422", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert proc.returncode == 2 and "gfx942" in _one_line_error(proc)


@pytest.mark.slow
def test_a_validation_that_runs_too_long_is_stopped_and_leaves_nothing(docker_engine, valtest_runtime, tmp_path):
    import valtest_cases
    from valtest_build import build_case

    tag = build_case(docker_engine, valtest_cases.GOOD, valtest_runtime)
    proc = run_cli("validate", "--image", tag, "--report", str(tmp_path / "r"), env={"ROCSTACK_VALIDATE_TIMEOUT": "1"})
    assert proc.returncode == 2 and "ran longer than 1 s" in _one_line_error(proc)
    assert not (tmp_path / "r").exists()
    leftovers = docker_engine.containers.list(all=True, filters={"label": "io.rocstack.validation=1", "ancestor": tag})
    assert leftovers == []


@pytest.mark.slow
def test_local_run_judges_this_environment_against_the_stack(tmp_path):
    """`--local` as on a GPU node without docker; here (no GPU) the kernel tests run in the interpreter."""
    pytest.importorskip("torch")
    from rocstack.imaging.context import snapshot_project

    # a project copy whose kernel recipe selects one kernel's tests: the full set runs in the image tests
    project = snapshot_project(REPO, tmp_path / "project")
    recipe = project / "recipes" / "components" / "rocstack-kernels.yaml"
    text = recipe.read_text()
    narrowed = re.sub(r'pytest: \[\s*"kernels/tests"\s*\]', 'pytest: ["kernels/tests -k rms_norm"]', text)
    assert narrowed != text, "rocstack-kernels.yaml no longer has pytest: [\"kernels/tests\"]"
    recipe.write_text(narrowed)
    proc = run_cli("validate", "--local", "--report", str(tmp_path / "r"), env={"ROCSTACK_ROOT": str(project)})
    assert proc.returncode in (0, 1), proc.stderr
    import json

    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["target"] == "local" and report["image"] is None and report["stack"] == "local"
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["import:rocstack-kernels"] == "pass"
    assert statuses["pytest:rocstack-kernels[interpreter]"] in ("pass", "fail")
    selection = next(c for c in report["checks"] if c["name"] == "pytest:rocstack-kernels[interpreter]")
    assert "kernels/tests -k rms_norm" in selection["evidence"]
    assert statuses["pytest:rocstack-kernels[gpu]"] == "skip"
    assert proc.returncode == (0 if report["verdict"] == "pass" else 1)
    assert "verdict:" in proc.stdout


def test_local_run_with_an_unknown_arch_is_one_line():
    proc = run_cli("validate", "--local", "--arch", "gfx9999")
    assert proc.returncode == 2 and "unknown arch 'gfx9999'" in _one_line_error(proc)
