"""The registry build cache against a BuildKit that can export one: Docker 28 with the containerd
image store, running in a container (tests/imaging/dind.py), with a registry beside it.

A small stack (the local stack's base, one component, a site template without torch) is baked
with --cache: the cache goes to the registry; after the inner engine forgets every image and its
whole build cache, the same bake takes the component's step from the registry (CACHED). Also:
`build --builder` with --cache-from/--cache-to on that engine, and a cache registry that is down."""

from __future__ import annotations

import json
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest

import dind
from build_helpers import TEST_PREFIX, copy_project
from cli_runner import run_cli
from rocstack.engine import connect
from rocstack.imaging.progress import parse_log
from rocstack.recipes.basekey import debootstrap_tag
from rocstack.recipes.catalog import Catalog

pytestmark = pytest.mark.slow

PROBE = """\
name: cache-probe
version: "0.0.1"
description: one slow step whose result the registry cache must bring back
source: {kind: local, path: probe-src}
arches: [gfx942]
build:
  toolchain: none
  commands:
    - sleep 3 && date +%s%N > /out/probe
artifacts:
  wheels: false
  files: {/out/probe: /opt/probe}
"""
# A site template (README's way): the stock template without torch, so the stack builds in seconds.
TEMPLATE = """\
{% extends "images/Dockerfile.j2" %}
{% block python_env %}
FROM base AS python-env
{% endblock %}
{% block runtime %}
FROM base AS runtime
{% for component in components %}
COPY --from={{ component.stage }} /out/rocstack-build/ {{ markers_dir }}/
{% endfor %}
COPY --from=build-cache-probe /out/probe /opt/probe
{% endblock %}
"""


@pytest.fixture(scope="module")
def inner(docker_engine, build_env, tmp_path_factory):
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker buildx is not installed (scripts/setup.sh installs Debian's docker-buildx)")
    catalog = Catalog.default()
    done = run_cli("base", "--stack", "local", env=build_env)
    assert done.returncode == 0, done.stderr
    base = debootstrap_tag(catalog.stack("local"))
    image = dind.build_image(docker_engine, base, f"{TEST_PREFIX}/dind:28")
    engine = dind.start(docker_engine, image, tmp_path_factory.mktemp("dind"))
    try:
        dind.load(docker_engine, engine, base)
        yield engine
    finally:
        dind.stop(docker_engine, engine)


@pytest.fixture(scope="module")
def probe_project(project_snapshot, tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    project = copy_project(root / "project", project_snapshot)
    (project / "probe-src").mkdir()
    (project / "probe-src" / "README").write_text("probe\n")
    (project / "recipes" / "components" / "cache-probe.yaml").write_text(PROBE)
    stack = project / "recipes" / "stacks" / "local.yaml"
    stack.write_text(stack.read_text().replace("components: [rocstack-kernels]", "components: [cache-probe]"))
    templates = root / "templates"
    templates.mkdir()
    (templates / "Dockerfile.j2").write_text(TEMPLATE)
    wheelhouse = root / "wheelhouse"  # the stack takes torch from a wheelhouse; this template never installs it
    wheelhouse.mkdir()
    with zipfile.ZipFile(wheelhouse / "torch-2.13.0-cp311-cp311-linux_x86_64.whl", "w") as wheel:
        wheel.writestr("torch/__init__.py", "")
    return project, templates, wheelhouse


def _bake(env, project, templates, wheelhouse, engine, cache):
    return run_cli("bake", "--stack", "local", "--arch", "gfx942", "--run", "--json", "--builder", engine.context,
                   "--cache", cache, "--templates", str(templates), "--wheelhouse", str(wheelhouse),
                   env={**env, "ROCSTACK_ROOT": str(project)})


def _forget_everything(engine) -> None:
    """The inner engine loses every built image and its whole build cache; the base image stays
    (a new base would be another cache key, rightly)."""
    built = "label=io.rocstack.arches"  # runtime and manifest images; the base carries no arches
    for image_id in set(engine.docker("images", "-aq", "--filter", built).stdout.split()):
        engine.docker("rmi", "-f", image_id)
    pruned = engine.docker("builder", "prune", "-af")
    assert pruned.returncode == 0, pruned.stderr
    assert engine.docker("images", "-aq", "--filter", built).stdout.strip() == ""


def test_bake_exports_the_cache_to_a_registry_and_a_cold_builder_imports_it(inner, build_env, probe_project):
    project, templates, wheelhouse = probe_project
    cache = f"{dind.REGISTRY}/rocstack-cache-{uuid.uuid4().hex[:6]}"
    first = _bake(build_env, project, templates, wheelhouse, inner, cache)
    assert first.returncode == 0, first.stderr[-4000:]
    target = json.loads(first.stdout)["targets"][0]
    assert target["status"] == "built" and "build-cache-probe" in target["stages_run"]
    client = connect(address=inner.address)
    image = client.images.get(target["tags"][0])  # recorded in the engine the builder loads into
    assert json.loads(image.labels["io.rocstack.manifest"])["builders"]["cache-probe"]["max_jobs"] >= 1
    probe = client.containers.run(image.id, ["cat", "/opt/probe"], remove=True).decode().strip()

    _forget_everything(inner)
    second = _bake(build_env, project, templates, wheelhouse, inner, cache)
    assert second.returncode == 0, second.stderr[-4000:]
    again = json.loads(second.stdout)["targets"][0]
    log = parse_log(Path(again["log"]).read_text())
    assert not log.summary()["build-cache-probe"].ran, "the probe step ran again: the cache was not imported"
    assert log.summary()["build-cache-probe"].steps_cached >= 1
    rebuilt = connect(address=inner.address).images.get(again["tags"][0])
    assert client.containers.run(rebuilt.id, ["cat", "/opt/probe"], remove=True).decode().strip() == probe


def test_build_on_another_builder_with_cache_flags(inner, build_env, probe_project):
    project, templates, wheelhouse = probe_project
    ref = f"{dind.REGISTRY}/rocstack-cache-build:{uuid.uuid4().hex[:6]}"
    env = {**build_env, "ROCSTACK_ROOT": str(project)}
    args = ["build", "--arch", "gfx942", "--builder", inner.context, "--templates", str(templates),
            "--wheelhouse", str(wheelhouse), "--json"]
    first = run_cli(*args, "--cache-to", ref, env=env)
    assert first.returncode == 0, first.stderr[-4000:]
    _forget_everything(inner)
    second = run_cli(*args, "--cache-from", ref, env=env)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "build-cache-probe" not in json.loads(second.stdout)["stages_run"]


def test_a_cache_registry_that_is_down_is_one_line(inner, build_env, probe_project):
    project, templates, wheelhouse = probe_project
    done = _bake(build_env, project, templates, wheelhouse, inner, "127.0.0.1:5999/nobody-listens")
    assert done.returncode == 1, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: 1 of 1 targets failed") and "Traceback" not in done.stderr
    target = json.loads(done.stdout)["targets"][0]
    assert target["status"] == "failed" and target["tags"] == [] and "127.0.0.1:5999" in target["error"]
