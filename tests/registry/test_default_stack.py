"""The real default-stack image through validate -> push -> pull on a clean engine state.

Runs only when the engine holds a rocstack-built image of the ``local`` stack (one
with a build manifest label, so not the base image); CI builds one first. The image
is not ours, so after the pull every tag it had is put back.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from docker.errors import ImageNotFound
from regtest_support import REPO, run_rocstack

from rocstack.registry.keys import generate_key

pytestmark = pytest.mark.slow


def _default_stack_image(engine):
    found = engine.images.list(filters={"label": ["io.rocstack.stack=local", "io.rocstack.manifest"]})
    found = [image for image in found if image.tags and "gfx942" in image.labels.get("io.rocstack.arches", "")]
    if not found:
        pytest.skip("no default-stack image for gfx942 on this engine (build one: invoke build --arch gfx942)")
    return max(found, key=lambda image: image.attrs["Created"])


def test_default_stack_image_validate_push_pull(capsys, docker_engine, registry_server, rocstack_home, tmp_path):
    image = _default_stack_image(docker_engine)
    ref, original_tags = image.tags[0], list(image.tags)
    validated = subprocess.run(
        ["rocstack", "validate", "--image", ref, "--report", str(tmp_path / "report")],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=1800,
    )
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-2000:]
    generate_key("default-stack")
    repo = registry_server.repo("default-stack")
    code, out, err = run_rocstack(capsys, "push", "--image", ref, "--registry", repo, "--report", str(tmp_path / "report"))
    assert code == 0, err
    assert "validated (verdict pass)" in out

    docker_engine.images.remove(image.id, force=True)  # clean engine state for this image
    try:
        with pytest.raises(ImageNotFound):
            docker_engine.images.get(image.id)
        code, out, err = run_rocstack(capsys, "pull", "--arch", "gfx942", "--registry", repo)
        assert code == 0, err
        assert "verdict    pass" in out and "stack      local" in out
        assert docker_engine.images.get(image.id).id == image.id
    finally:
        try:
            restored = docker_engine.images.get(image.id)
        except ImageNotFound:
            restored = None
        if restored is not None:
            for name in original_tags:
                repository, _, tag = name.rpartition(":")
                restored.tag(repository, tag)
    assert restored is not None, f"{ref} could not be pulled back; rebuild it with invoke build"
