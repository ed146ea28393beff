"""`rocstack pin-bases` against a real registry: Debian's docker-registry on 127.0.0.1 with an image
pushed there by the engine (no public registry is reachable from here). The digest it writes is
checked against the one the engine reports for its own push (RepoDigests), an independent reader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_runner import run_cli
from rocstack.imaging.context import snapshot_project

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _push(client, image_id: str, reference: str) -> str:
    repository, _, tag = reference.rpartition(":")
    client.images.get(image_id).tag(repository, tag)
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in line, line
    digests = client.images.get(reference).attrs["RepoDigests"]
    return next(d.split("@", 1)[1] for d in digests if d.startswith(repository + "@"))


def test_pin_bases_writes_the_registrys_digest_and_check_sees_a_moved_tag(registry_server, images, docker_engine, tmp_path):
    base = f"{registry_server.repo('pinbase')}:1"
    first = _push(docker_engine, images.build("pinbase-one").id, base)
    project = snapshot_project(REPO, tmp_path / "project")
    stack = project / "recipes" / "stacks" / "pinned.yaml"
    text = (REPO / "recipes" / "stacks" / "rocm70-ubuntu2404-triton.yaml").read_text()
    text = text.replace("name: rocm70-ubuntu2404-triton", "name: pinned")
    text = text.replace('base: {image: "rocm/dev-ubuntu-24.04:7.0-complete"}', f'base: {{image: "{base}"}}  # pinned by rocstack pin-bases')
    stack.write_text(text)
    env = {"ROCSTACK_ROOT": str(project)}

    done = run_cli("pin-bases", "--stack", "pinned", env=env)
    assert done.returncode == 0, done.stderr
    assert f"pinned: {base}@{first} updated" in done.stdout
    written = stack.read_text()
    assert first in written and "# pinned by rocstack pin-bases" in written  # comments and layout kept
    rendered = run_cli("render", "--stack", "pinned", "--arch", "gfx942", env=env)
    assert rendered.returncode == 0, rendered.stderr
    assert f"FROM {base}@{first} AS base" in rendered.stdout

    assert run_cli("pin-bases", "--stack", "pinned", "--check", env=env).returncode == 0
    second = _push(docker_engine, images.build("pinbase-two").id, base)  # the tag moves
    assert second != first
    stale = run_cli("pin-bases", "--stack", "pinned", "--check", env=env)
    assert stale.returncode == 1 and "STALE" in stale.stdout and "pin-bases" in stale.stderr
    assert first in stack.read_text()  # --check writes nothing
    assert run_cli("pin-bases", "--stack", "pinned", env=env).returncode == 0
    assert second in stack.read_text() and first not in stack.read_text()


def test_pin_bases_refuses_in_one_line(registry_server, tmp_path):
    done = run_cli("pin-bases", "--stack", "local")
    assert done.returncode == 2 and "debootstrap" in done.stderr and "Traceback" not in done.stderr
    project = snapshot_project(REPO, tmp_path / "project")
    stack = project / "recipes" / "stacks" / "gone.yaml"
    text = (REPO / "recipes" / "stacks" / "rocm70-ubuntu2404-triton.yaml").read_text().replace(
        "name: rocm70-ubuntu2404-triton", "name: gone").replace(
        'base: {image: "rocm/dev-ubuntu-24.04:7.0-complete"}', f'base: {{image: "{registry_server.host}/nothing/here:1"}}')
    stack.write_text(text)
    missing = run_cli("pin-bases", "--stack", "gone", env={"ROCSTACK_ROOT": str(project)})
    assert missing.returncode == 2 and "has no nothing/here:1" in missing.stderr
    shutil.rmtree(project)
