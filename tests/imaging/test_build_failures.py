"""On the real engine: a failing component, Ctrl-C, and a kernel edit that rebuilds only what it must."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from build_helpers import copy_project
from cli_runner import run_cli
from rocstack.imaging.progress import parse_log

pytestmark = pytest.mark.slow

RECIPE = "recipes/components/rocstack-kernels.yaml"
FIRST_COMMAND = '    - rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" .\n'


def _project_with_command(tmp_path: Path, snapshot: Path, command: str) -> Path:
    """A copy of the project whose kernel recipe runs ``command`` before its real commands."""
    project = copy_project(tmp_path / "project", snapshot)
    recipe = project / RECIPE
    text = recipe.read_text()
    assert FIRST_COMMAND in text
    recipe.write_text(text.replace(FIRST_COMMAND, f"    - {json.dumps(command)}\n" + FIRST_COMMAND))
    return project


def _tags(client, repository: str) -> list[str]:
    return [tag for image in client.images.list(name=repository) for tag in image.tags]


def test_a_failing_component_names_itself_shows_its_log_and_tags_nothing(docker_engine, build_env, project_snapshot, tmp_path):
    marker = uuid.uuid4().hex[:8]
    command = f"echo 'compiling {marker}' && echo 'fatal: simulated compiler crash {marker}' >&2 && exit 3"
    project = _project_with_command(tmp_path, project_snapshot, command)
    repository = f"rocstack-buildtest-fail-{marker}"
    log_copy = tmp_path / "build.log"
    env = {**build_env, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": repository}
    result = run_cli("build", "--arch", "gfx942", "--log", str(log_copy), env=env)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: component rocstack-kernels failed in stage build-rocstack-kernels (3/4), step 3/3")
    assert "exit code: 3" in error and "Traceback" not in result.stderr
    tail = [line for line in result.stderr.splitlines() if line.startswith("  | ")]
    assert 0 < len(tail) <= 40 and any(f"simulated compiler crash {marker}" in line for line in tail)
    log_path = Path(error.split("full log: ")[1])
    assert log_path.is_file() and log_path.parent == Path(build_env["ROCSTACK_HOME"]) / "logs"
    assert f"simulated compiler crash {marker}" in log_copy.read_text()
    assert _tags(docker_engine, f"{repository}/local") == []


def test_ctrl_c_stops_the_build_cleanly_and_tags_nothing(docker_engine, build_env, project_snapshot, tmp_path):
    marker = uuid.uuid4().hex[:8]
    project = _project_with_command(tmp_path, project_snapshot, f"echo 'sleeping {marker}' && sleep 600")
    repository = f"rocstack-buildtest-int-{marker}"
    env = {**os.environ, **build_env, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": repository}
    # SIGINT at its default in the child, as in a terminal: a test run started in the background of a
    # non-interactive shell (`bash .ci/run &`) inherits SIGINT ignored, and Python keeps it ignored
    proc = subprocess.Popen(["rocstack", "build", "--arch", "gfx942"], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    deadline = time.monotonic() + 900
    for line in proc.stderr:  # progress lines; wait until the sleeping step runs
        seen.append(line)
        if "build-rocstack-kernels" in line and "running" in line:
            break
        assert time.monotonic() < deadline, "the sleeping step never started"
    time.sleep(2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    assert code == 130, "".join(seen) + rest
    assert time.monotonic() - started < 60
    assert "build interrupted" in rest and "Traceback" not in rest
    logs = sorted((Path(build_env["ROCSTACK_HOME"]) / "logs").glob("build-local-gfx942-*.log"), key=os.path.getmtime)
    text = logs[-1].read_text()
    assert "interrupted (Ctrl-C)" in text and "build stopped after" in text
    assert _tags(docker_engine, f"{repository}/local") == []


def test_editing_one_kernel_file_rebuilds_only_the_kernel_and_runtime_stages(docker_engine, build_env, project_snapshot, tmp_path):
    project = copy_project(tmp_path / "project", project_snapshot)
    env = {**build_env, "ROCSTACK_ROOT": str(project)}
    first = run_cli("build", "--arch", "gfx942", "--json", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    kernel = project / "kernels" / "rocstack_kernels" / "rms_norm.py"
    kernel.write_text(kernel.read_text() + f"\n# edited by the cache test {uuid.uuid4().hex}\n")
    second = run_cli("build", "--arch", "gfx942", "--json", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    result = json.loads(second.stdout)
    assert result["stages_run"] == ["build-rocstack-kernels", "runtime"]
    assert result["image_id"] != json.loads(first.stdout)["image_id"]
    # The log on disk is the evidence: re-read it independently of the live parser.
    from_log = parse_log(Path(result["log"]).read_text())
    assert from_log.stages_run() == ["build-rocstack-kernels", "runtime"]
    assert from_log.summary()["python-env"].steps_cached > 0 and not from_log.summary()["base"].ran
