"""On the real engine: a bake of two targets recorded like `build`, a failing target among good ones,
and the component nothing consumes (artifacts: {wheels: false}) that must still be built (issue 19 item 9)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from build_helpers import TEST_PREFIX, copy_project
from cli_runner import run_cli
from rocstack.imaging.progress import parse_log

pytestmark = pytest.mark.slow

BROKEN_RECIPE = """\
name: broken
version: "0.0.1"
description: a component whose build fails and whose artifacts nothing consumes
source: {kind: local, path: broken-src}
arches: [gfx90a, gfx942]
build:
  toolchain: none
  commands:
    - 'echo "building broken" && echo "fatal: broken on purpose %s" >&2 && exit 7'
artifacts:
  wheels: false
"""


@pytest.fixture(scope="module")
def buildx():
    done = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("docker buildx is not installed (scripts/setup.sh installs Debian's docker-buildx)")


def _project_with_broken_stack(tmp_path: Path, snapshot: Path, marker: str) -> Path:
    """A project copy with stack local-broken = local + a component that fails and ships nothing."""
    project = copy_project(tmp_path / "project", snapshot)
    (project / "broken-src").mkdir()
    (project / "broken-src" / "README").write_text("nothing to build\n")
    (project / "recipes" / "components" / "broken.yaml").write_text(BROKEN_RECIPE % marker)
    local = (project / "recipes" / "stacks" / "local.yaml").read_text()
    broken = local.replace("name: local\n", "name: local-broken\n").replace(
        "components: [rocstack-kernels]", "components: [rocstack-kernels, broken]")
    assert broken != local
    (project / "recipes" / "stacks" / "local-broken.yaml").write_text(broken)
    return project


def _tags(client, repository: str) -> list[str]:
    return [tag for image in client.images.list(name=repository) for tag in image.tags]


def test_a_component_nothing_consumes_is_built_and_its_failure_fails_the_build(docker_engine, build_env, project_snapshot, tmp_path):
    """Regression (issue 19 item 9): wheels: false and a failing command used to 'succeed' (BuildKit pruned the stage)."""
    marker = uuid.uuid4().hex[:8]
    project = _project_with_broken_stack(tmp_path, project_snapshot, marker)
    repository = f"{TEST_PREFIX}/unconsumed-{marker}"  # under the session's prefix: removed at its end
    env = {**build_env, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": repository}
    result = run_cli("build", "--stack", "local-broken", "--arch", "gfx942", env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: component broken failed in stage build-broken") and "exit code: 7" in error
    assert any(f"broken on purpose {marker}" in line for line in result.stderr.splitlines() if line.startswith("  | "))
    assert _tags(docker_engine, f"{repository}/local-broken") == []


def test_bake_of_two_targets_records_each_image_like_build(buildx, docker_engine, build_env, gfx942_image):
    done = run_cli("bake", "--stack", "local", "--arch", "gfx942", "--arch", "gfx90a,gfx942", "--run", "--json", env=build_env)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    targets = {t["target"]: t for t in result["targets"]}
    assert sorted(targets) == ["local-gfx90a_gfx942", "local-gfx942"]
    for name, target in targets.items():
        assert target["status"] == "built" and len(target["tags"]) == 2
        image = docker_engine.images.get(target["tags"][0])
        assert image.id == target["image_id"] and target["tags"][1] in image.tags
        labels = image.labels
        assert labels["io.rocstack.arches"] == ",".join(target["arches"])
        manifest = json.loads(labels["io.rocstack.manifest"])
        assert manifest["arches"] == target["arches"] and manifest["components"][0]["max_jobs"] >= 1
        assert set(manifest["builders"]) == {"rocstack-kernels"}
        assert labels["org.opencontainers.image.created"] and labels["org.opencontainers.image.base.name"].startswith("rocstack-base/local:")
        # the per-target build log reads back with the same parser as a `build` log
        progress = parse_log(Path(target["log"]).read_text())
        assert progress.failed_step() is None and "runtime" in progress.summary()
    # same inputs as `rocstack build --arch gfx942`: the same content hash, so the same versioned tag
    assert targets["local-gfx942"]["tags"][0] == gfx942_image["tags"][0]


def test_a_failing_bake_target_is_not_tagged_and_the_others_are_recorded(buildx, docker_engine, build_env, project_snapshot, tmp_path):
    marker = uuid.uuid4().hex[:8]
    project = _project_with_broken_stack(tmp_path, project_snapshot, marker)
    repository = f"{TEST_PREFIX}/bakefail-{marker}"  # under the session's prefix: removed at its end
    env = {**build_env, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": repository}
    done = run_cli("bake", "--stack", "local,local-broken", "--arch", "gfx942", "--run", env=env)
    assert done.returncode == 1, done.stderr[-4000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 targets failed: local-broken-gfx942")
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED local-broken-gfx942: ")]
    assert len(failed) == 1 and "component broken failed in stage build-broken" in failed[0] and "exit code: 7" in failed[0]
    assert any(line.startswith("built local-gfx942: ") for line in done.stdout.splitlines())
    assert _tags(docker_engine, f"{repository}/local-broken") == []
    assert sorted(_tags(docker_engine, f"{repository}/local"))[-1].endswith(":gfx942-latest")


@pytest.fixture
def dead_context(buildx):
    """A docker context whose engine socket does not exist: its docker-driver builder is unreachable."""
    name = f"rocstack-test-dead-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "context", "create", name, "--docker", f"host=unix:///nonexistent/{name}.sock"],
                   check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True)


@pytest.mark.parametrize("task", ["build", "bake"])
def test_unknown_or_unreachable_builder_is_one_line(task, dead_context, build_env):
    extra = ["--run"] if task == "bake" else []
    for builder, message in ((f"{dead_context}-missing", "unknown builder"), (dead_context, "is unreachable")):
        done = run_cli(task, "--arch", "gfx942", "--builder", builder, *extra, env=build_env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_builder_that_cannot_export_a_cache_says_so_in_one_line(buildx, docker_engine, build_env, gfx942_image):
    """The engine's own BuildKit (docker driver, classic image store) cannot export a registry cache."""
    done = run_cli("build", "--arch", "gfx942", "--cache-to", "127.0.0.1:9/rocstack-cache:x", env=build_env)
    assert done.returncode == 1, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "cache" in error.lower() and "Traceback" not in done.stderr
