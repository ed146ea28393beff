"""The staged build context and the content hash that names the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rocstack.imaging.context import stage_context, wheelhouse_files
from rocstack.imaging.identity import content_hash, image_name
from rocstack.imaging.options import compute_build_options
from rocstack.errors import RocstackError
from rocstack.recipes.catalog import Catalog, select

from build_helpers import copy_project

TORCH = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project")


@pytest.fixture
def wheelhouse(tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / TORCH).write_bytes(b"not really a wheel, only its name matters here")
    return folder


def _stage(project: Path, wheelhouse: Path, arch: str = "gfx942"):
    selection = select(Catalog(project), "local", arch)
    return selection, stage_context(selection, wheelhouse_files([wheelhouse]), "FROM scratch\n")


def test_layout_holds_project_package_sources_and_wheelhouse(project, wheelhouse):
    (project / "kernels" / "rocstack_kernels" / "__pycache__").mkdir(exist_ok=True)
    (project / "kernels" / "rocstack_kernels" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (project / "kernels" / "build").mkdir()  # setuptools output beside kernels/pyproject.toml
    (project / "kernels" / "build" / "junk.py").write_text("")
    _, staged = _stage(project, wheelhouse)
    files = set(staged.files)
    assert "rocstack/rocstack/imaging/context.py" in files  # the package's own sources are staged
    assert "rocstack-package/rocstack/imaging/context.py" in files
    assert "rocstack-package/pyproject.toml" in files and not any(f.startswith("rocstack-package/kernels") for f in files)
    assert "sources/rocstack-kernels/pyproject.toml" in files
    assert f"wheelhouse/{TORCH}" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") or "/build/junk.py" in f for f in files)
    staged_wheel = staged.directory / "wheelhouse" / TORCH
    assert os.path.samefile(staged_wheel, wheelhouse / TORCH)  # hard link, not a copy
    assert (staged.directory / "Dockerfile").read_text() == "FROM scratch\n"


def test_restaging_removes_stale_files_and_keeps_unchanged_ones(project, wheelhouse):
    _, first = _stage(project, wheelhouse)
    kept = first.directory / "rocstack" / "pyproject.toml"
    before = kept.stat().st_ino
    (project / "kernels" / "rocstack_kernels" / "registry.py").unlink()
    _, second = _stage(project, wheelhouse)
    assert not (second.directory / "sources/rocstack-kernels/rocstack_kernels/registry.py").exists()
    assert kept.stat().st_ino == before


def test_hash_changes_with_a_kernel_source_and_only_its_component_digest_moves(project, wheelhouse):
    selection, first = _stage(project, wheelhouse)
    digest = content_hash(selection, "FROM scratch\n", first, "sha256:base")
    assert digest == content_hash(selection, "FROM scratch\n", first, "sha256:base")
    assert digest != content_hash(selection, "FROM scratch\n", first, "sha256:other-base")
    kernel = project / "kernels" / "rocstack_kernels" / "rms_norm.py"
    kernel.write_text(kernel.read_text() + "\n# edited\n")
    _, second = _stage(project, wheelhouse)
    assert second.digest("sources/rocstack-kernels") != first.digest("sources/rocstack-kernels")
    assert second.digest("rocstack-package") == first.digest("rocstack-package")
    assert content_hash(selection, "FROM scratch\n", second, "sha256:base") != digest


def test_tags_are_deterministic_and_name_the_arches(project, monkeypatch):
    selection = select(Catalog(project), "local", "gfx942,gfx90a")
    name = image_name(selection, "ab" * 32)
    assert name.versioned == "rocstack/local:gfx942_gfx90a-abababababab"
    assert name.latest == "rocstack/local:gfx942_gfx90a-latest"
    monkeypatch.setenv("ROCSTACK_IMAGE_PREFIX", "Bad Prefix")
    with pytest.raises(RocstackError):
        image_name(selection, "ab" * 32)


def test_a_wheelhouse_without_the_stack_torch_is_refused(project, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RocstackError) as info:  # refused while the build options are resolved
        compute_build_options(stack="local", arch="gfx942", wheelhouses=[empty], catalog=Catalog(project))
    assert "no torch-2.13.0 wheel for cp311" in info.value.one_line()
    assert "--wheelhouse" in info.value.one_line()


@pytest.mark.parametrize("platform", ["manylinux_2_28_aarch64", "macosx_11_0_arm64", "win_amd64"])
def test_a_torch_wheel_for_another_platform_is_refused_naming_it(project, tmp_path, platform):
    other = tmp_path / "other"
    other.mkdir()
    (other / f"torch-2.13.0-cp311-cp311-{platform}.whl").write_bytes(b"")
    with pytest.raises(RocstackError) as info:
        compute_build_options(stack="local", arch="gfx942", wheelhouses=[other], catalog=Catalog(project))
    assert f"are for {platform}, not linux x86_64" in info.value.one_line()
    assert "--platform manylinux_2_28_x86_64" in info.value.one_line()
