"""End to end on the real engine: the default stack built for gfx942 and for gfx90a,gfx942."""

from __future__ import annotations

import io
import json
import shlex
import sys
import tarfile

import pytest
from elftools.elf.elffile import ELFFile

from build_helpers import TEST_PREFIX, cli_build
from cli_runner import run_cli
from rocstack.arches import arch_for_mach
from rocstack.imaging.index import host_index_settings

pytestmark = pytest.mark.slow

EF_AMDGPU_MACH = 0x0FF


def _read_tree(client, image_id: str, path: str) -> dict[str, bytes]:
    """Files under ``path`` in the image (name relative to path's parent -> bytes)."""
    container = client.containers.create(image_id, command=["true"])
    try:
        stream, _ = container.get_archive(path)
        data = io.BytesIO(b"".join(stream))
    finally:
        container.remove()
    with tarfile.open(fileobj=data) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _code_object_arches(files: dict[str, bytes]) -> dict[str, str]:
    out = {}
    for name, blob in files.items():
        if name.endswith(".hsaco"):
            elf = ELFFile(io.BytesIO(blob))
            assert elf["e_machine"] == "EM_AMDGPU", name
            out[name] = arch_for_mach(elf["e_flags"] & EF_AMDGPU_MACH)
    return out


def _check_image(client, result: dict, arches: list[str]):
    image = client.images.get(result["image_id"])
    versioned, latest = result["tags"]
    slug = "_".join(arches)
    assert versioned == f"{TEST_PREFIX}/local:{slug}-{result['content_hash'][:12]}"
    assert latest == f"{TEST_PREFIX}/local:{slug}-latest"
    assert versioned in image.tags and latest in image.tags
    labels = image.labels
    assert labels["io.rocstack.stack"] == "local"
    assert labels["io.rocstack.arches"] == ",".join(arches)
    assert "rocstack-kernels" in json.loads(labels["io.rocstack.components"])
    assert labels["org.opencontainers.image.title"] == "rocstack local"
    manifest = json.loads(labels["io.rocstack.manifest"])
    in_image = json.loads(_read_tree(client, image.id, "/opt/rocstack/manifest.json")["manifest.json"])
    assert manifest == in_image == result["manifest"]
    assert manifest["schema"] == "rocstack.build-manifest/v1"
    assert manifest["stack"] == "local" and manifest["arches"] == arches
    (component,) = manifest["components"]
    assert component["name"] == "rocstack-kernels" and component["ref"] == "local:kernels@0.1.0"
    assert len(component["source_sha256"]) == 64
    assert manifest["base_image_id"].startswith("sha256:")
    assert manifest["tools"]["torch"].endswith("+cpu") and manifest["tools"]["triton"] == "3.6.0"
    assert set(manifest["stages"]) == {"base", "python-env", "build-rocstack-kernels", "runtime"}
    # MAX_JOBS was decided by the builder, and recorded with what it saw
    builder = manifest["builders"]["rocstack-kernels"]
    assert component["max_jobs"] == builder["max_jobs"] >= 1 and builder["nproc"] >= 1 and builder["mem_available_kb"] > 0
    # OCI labels that depend on time and the base, added with the manifest (the rendered Dockerfile has none)
    assert labels["org.opencontainers.image.created"] == manifest["created"]
    assert labels["org.opencontainers.image.base.name"].startswith("rocstack-base/local:")
    assert labels["org.opencontainers.image.base.digest"] == manifest["base_image_id"]
    # The kernels were compiled ahead of time for exactly the requested arches.
    kernels = _read_tree(client, image.id, "/opt/rocstack/kernels")
    built = json.loads(kernels["kernels/manifest.json"])
    assert sorted(built["targets"]) == sorted(arches)
    found = _code_object_arches(kernels)
    assert found, "no code objects in /opt/rocstack/kernels"
    assert set(found.values()) == set(arches)
    for arch in arches:
        entries = [e for e in built["entries"] if e["target"] == arch and e["status"] == "built"]
        assert entries, f"no kernel built for {arch}"
        for entry in entries:
            assert found[f"kernels/{entry['code_object']}"] == arch


def test_default_stack_for_gfx942(docker_engine, gfx942_image):
    _check_image(docker_engine, gfx942_image, ["gfx942"])


def test_default_stack_for_gfx90a_and_gfx942_is_one_image(docker_engine, gfx90a_gfx942_image):
    _check_image(docker_engine, gfx90a_gfx942_image, ["gfx90a", "gfx942"])


def test_rebuild_without_changes_runs_no_stage_and_keeps_the_image(docker_engine, build_env, gfx942_image):
    gfx942 = gfx942_image
    result = run_cli("build", "--arch", "gfx942", "--quiet", env=build_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == gfx942["tags"][0] and result.stderr == ""
    again = cli_build(build_env, "--arch", "gfx942")
    assert again["stages_run"] == [] and again["reused_manifest_image"]
    assert again["image_id"] == gfx942["image_id"]


def test_wheelhouse_wheels_do_not_land_in_the_image(docker_engine, gfx942_image):
    wheels = sorted(p.name for folder in host_index_settings(sys.executable).find_links for p in folder.glob("*.whl"))
    assert any(name.startswith("torch-") for name in wheels), "the default build took torch from this wheelhouse"
    names = " -o ".join(f"-name {shlex.quote(name)}" for name in wheels)
    out = docker_engine.containers.run(
        gfx942_image["image_id"],
        ["sh", "-c", f"find / -xdev \\( {names} -o -path '/wheelhouse/*' \\) -print; python -c 'import torch; print(torch.__version__)'"],
        remove=True,
    ).decode().split()
    assert out == [gfx942_image["manifest"]["tools"]["torch"]]  # none of the wheels, torch installed from one
