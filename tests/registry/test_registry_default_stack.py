"""The real default-stack image through validate -> push -> pull on a clean engine state.

Pulling back on a clean engine state means removing the local image for a while, and
on a shared engine other work may be using it, so this runs only where it is asked
for: ``ROCSTACK_REGTEST_DEFAULT_STACK=1`` (CI sets it after building the image). It
takes ``rocstack/local:gfx942-latest`` (else the newest ``rocstack/local:*`` image for
gfx942), validates it (or reuses ``$ROCSTACK_REGTEST_REPORT_DIR/report.json`` when that
report is for this image), pushes, removes it, pulls it back, and puts every tag it
had back, removing the tags the pull added. Validated without a GPU (CI), the image is
static-only: `pull` refuses it, and the pull back is made with ``allow_static``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from docker.errors import ImageNotFound
from regtest_support import REPO, run_rocstack

from rocstack.registry.keys import generate_key
from rocstack.registry.pull import pull

pytestmark = pytest.mark.slow
OPT_IN = "ROCSTACK_REGTEST_DEFAULT_STACK"


def _default_stack_image(engine):
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(f"set {OPT_IN}=1 to push/pull the real default-stack image (removes and restores it locally)")
    found = [
        image
        for image in engine.images.list(filters={"label": ["io.rocstack.stack=local", "io.rocstack.manifest"]})
        if any(t.startswith("rocstack/local:") for t in image.tags)
        and "gfx942" in image.labels.get("io.rocstack.arches", "")
    ]
    if not found:
        pytest.skip("no default-stack image for gfx942 on this engine (build one: invoke build --arch gfx942)")
    latest = [image for image in found if "rocstack/local:gfx942-latest" in image.tags]
    return latest[0] if latest else max(found, key=lambda image: image.attrs["Created"])


def _report_dir(image, tmp_path: Path, ref: str) -> Path:
    given = os.environ.get("ROCSTACK_REGTEST_REPORT_DIR")
    if given and (Path(given) / "report.json").exists():
        report = json.loads((Path(given) / "report.json").read_text())
        if (report.get("image") or {}).get("id") == image.id:
            return Path(given)
    validated = subprocess.run(
        ["rocstack", "validate", "--image", ref, "--report", str(tmp_path / "report")],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=1800,
    )
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-2000:]
    return tmp_path / "report"


def test_default_stack_image_validate_push_pull(capsys, docker_engine, registry_server, rocstack_home, tmp_path):
    image = _default_stack_image(docker_engine)
    ref = next(t for t in image.tags if t.startswith("rocstack/local:"))
    original_tags = list(image.tags)
    report = _report_dir(image, tmp_path, ref)
    generate_key("default-stack")
    repo = registry_server.repo("default-stack")
    code, out, err = run_rocstack(capsys, "push", "--image", ref, "--registry", repo, "--report", str(report))
    assert code == 0, err
    gpu_ran = ((json.loads((report / "report.json").read_text()).get("environment") or {}).get("gpu") or {}).get("available")
    level = "gpu-verified" if gpu_ran else "static-only"  # CI validates without a GPU
    assert f"validated (verdict pass, {level})" in out
    if level == "static-only":  # refused before the engine is touched
        code, _, err = run_rocstack(capsys, "pull", "--arch", "gfx942", "--registry", repo)
        assert code == 1 and "passed validation static-only, not gpu-verified" in err, err

    docker_engine.images.remove(image.id, force=True)  # clean engine state for this image
    restored = None
    try:
        with pytest.raises(ImageNotFound):
            docker_engine.images.get(image.id)
        result = pull("gfx942", registry=repo, allow_static=True, say=lambda _: None)
        assert (result.verified.verdict, result.verified.level, result.verified.stack) == ("pass", level, "local")
        assert docker_engine.images.get(image.id).id == image.id
    finally:
        try:
            restored = docker_engine.images.get(image.id)
        except ImageNotFound:
            pass
        if restored is not None:
            for name in original_tags:
                repository, _, tag = name.rpartition(":")
                restored.tag(repository, tag)
            for name in set(docker_engine.images.get(image.id).tags) - set(original_tags):
                docker_engine.images.remove(name, noprune=True)
    assert restored is not None, f"{ref} could not be pulled back; rebuild it with invoke build"
    assert sorted(docker_engine.images.get(image.id).tags) == sorted(original_tags)
