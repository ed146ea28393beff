"""Per-target coverage of kpack-split libraries in TheRock-like trees made by the upstream tool.

Reproduces TheRock#7081 (incomplete xnack overlay shadows the base archive), pytorch#194498
(one group's archive missing while the arch's other device archives are installed), TheRock
PR #5768 (a hardlinked devel copy resolves ``.kpack`` beside itself) and the loader's
environment variables.
"""

from __future__ import annotations

import os

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit.elf import open_elf
from rocstack.audit.kpack import read_split_library
from rocstack.audit.kpack_coverage import judge
from rocstack.audit.kpack_resolve import HardlinkIndex, KpackEnv
from rocstack.audit.sysroot import Sysroot

from kpack_fixtures import SITE, kbuild, therock_tree  # noqa: F401  (kbuild is a fixture)

TORCH_HIP = f"/{SITE}/torch/lib/libtorch_hip.so"
TORCH_XNACK = f"/{SITE}/torch/lib/libtorch_xnack.so"
AOTRITON = f"/{SITE}/torch/lib/libaotriton_v2.so"
BLAS = f"/{SITE}/_rocm_sdk_libraries/lib/libblas_lib.so"
BLAS_DEVEL = f"/{SITE}/_rocm_sdk_devel/lib/libblas_lib.so"
RDC = "/opt/rocm/lib/librdc.so"


def judge_tree(tree, arches: str, env: dict | None = None):
    root = Sysroot(tree.root)
    libs = {}
    for path in sorted(tree.root.rglob("*.so")):
        mapped, elf = open_elf(path)
        with mapped:
            lib = read_split_library(elf, tree.inside(path))
        if lib is not None:
            libs[tree.inside(path)] = lib
    return judge(libs, parse_arch_list(arches), root, KpackEnv.from_mapping(env or {}), HardlinkIndex.build(root))


def errors(coverage):
    return [f for f in coverage.findings if f.severity == "error"]


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_complete_therock_tree_is_covered_for_every_target(kbuild, tmp_path, compression):
    tree = therock_tree(kbuild, tmp_path, compression=compression, devel="symlink")
    coverage = judge_tree(tree, "gfx90a,gfx1030")
    assert coverage.findings == []
    for library in (TORCH_HIP, AOTRITON, BLAS, BLAS_DEVEL, RDC, "/opt/rocm/lib/libk.so"):
        for target in ("gfx90a", "gfx1030"):
            assert coverage.covered(library, target), (library, target)
    assert coverage.sources(TORCH_HIP, "gfx90a") == [f"/{SITE}/torch/.kpack/torch_gfx90a.kpack"]
    assert coverage.sources(BLAS_DEVEL, "gfx1030") == [f"/{SITE}/_rocm_sdk_libraries/.kpack/blas_lib_gfx1030.kpack"]
    # the xnack+ mode (HSA_XNACK=1) of gfx90a was judged too, through the same base archive
    modes = {r.device.target for r in coverage.rows(TORCH_HIP, "gfx90a")}
    assert modes == {"gfx90a:sramecc+:xnack-", "gfx90a:sramecc+:xnack+"}


def test_library_not_built_for_an_arch_whose_group_archive_exists_is_an_error(kbuild, tmp_path):
    """librdc.so was built for gfx90a and gfx1030 only; hip_lib_gfx908.kpack (libk.so's) lacks it."""
    coverage = judge_tree(therock_tree(kbuild, tmp_path, artifacts=("hip_lib",)), "gfx908")
    assert coverage.covered("/opt/rocm/lib/libk.so", "gfx908") and not coverage.covered(RDC, "gfx908")
    [finding] = errors(coverage)
    assert finding.where == RDC and "lib/librdc.so#0" in finding.message
    assert "hip_lib_gfx908.kpack" in finding.message and "hipErrorInvalidImage" in finding.message


def test_incomplete_xnack_overlay_shadowing_the_base_archive_is_an_error(kbuild, tmp_path):
    """TheRock#7081: torch_gfx90a:xnack-.kpack holds only libtorch_xnack; on gfx90a:sramecc+:xnack- the
    loader picks it before torch_gfx90a.kpack and does not find libtorch_hip's code objects."""
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "torch_xnack"), arches=("gfx90a",))
    coverage = judge_tree(tree, "gfx90a")
    assert not coverage.covered(TORCH_HIP, "gfx90a") and coverage.covered(TORCH_XNACK, "gfx90a")
    shadowed = [f for f in errors(coverage) if f.where == TORCH_HIP]
    assert len(shadowed) == 2  # default mode (xnack-) and HSA_XNACK=1 (xnack+): both overlays are incomplete
    default = next(f for f in shadowed if "HSA_XNACK" not in f.message)
    assert "torch_gfx90a:xnack-.kpack (gfx90a:xnack-) lacks torch/lib/libtorch_hip.so#0" in default.message
    assert "rocm-systems PR #9953" in default.message and "hipErrorInvalidImage" in default.message
    assert "torch_gfx90a.kpack" in default.message and "TheRock#7081" in default.message
    assert "remove the incomplete overlay" in default.hint
    assert [r.status for r in coverage.rows(TORCH_HIP, "gfx90a")] == ["shadowed", "shadowed"]


def test_removing_the_overlays_fixes_torch_and_breaks_the_xnack_only_library(kbuild, tmp_path):
    """vLLM's workaround for TheRock#7081 deletes the overlays: libtorch_hip then resolves to the base,
    and a library built only for xnack-/xnack+ has nothing left."""
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "torch_xnack"), arches=("gfx90a",),
                        drop=("torch_gfx90a:xnack-.kpack", "torch_gfx90a:xnack+.kpack"))
    coverage = judge_tree(tree, "gfx90a")
    assert coverage.covered(TORCH_HIP, "gfx90a")
    assert {r.status for r in coverage.rows(TORCH_XNACK, "gfx90a")} == {"missing-kernels"}


def test_explicit_xnack_target_is_judged_in_that_mode_only(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "torch_xnack"), arches=("gfx90a",))
    coverage = judge_tree(tree, "gfx90a:xnack+")
    rows = coverage.rows(TORCH_XNACK, "gfx90a:xnack+")
    assert [(r.device.target, r.status, os.path.basename(r.archive)) for r in rows] == \
        [("gfx90a:sramecc+:xnack+", "ok", "torch_gfx90a:xnack+.kpack")]


def test_group_archive_missing_beside_the_arch_s_other_archives_names_the_package(kbuild, tmp_path):
    """pytorch#194498: the torch device archive for the arch is installed, aotriton's is not."""
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "aotriton"), arches=("gfx1030",),
                        drop=("aotriton_gfx1030.kpack",))
    coverage = judge_tree(tree, "gfx1030")
    assert coverage.covered(TORCH_HIP, "gfx1030") and not coverage.covered(AOTRITON, "gfx1030")
    [finding] = errors(coverage)
    assert finding.where == AOTRITON and "hipErrorFileNotFound" in finding.message
    assert "torch_gfx1030.kpack for gfx1030 is installed beside it" in finding.message
    assert "pytorch#194498" in finding.message
    assert finding.hint.startswith("install amd-torch-device-gfx1030")
    assert "aotriton_gfx1030.kpack" in finding.evidence


def test_missing_arch_archive_names_therock_device_packages(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "blas_lib"), arches=("gfx90a",), devel=None)
    coverage = judge_tree(tree, "gfx90a,gfx908")
    hints = {f.where: f.hint for f in errors(coverage)}
    assert hints == {TORCH_HIP: "install amd-torch-device-gfx908", BLAS: "install rocm-sdk-device-gfx908"}


def test_hardlinked_devel_copy_resolves_archives_beside_itself(kbuild, tmp_path):
    """TheRock PR #5768: _rocm_sdk_devel/lib holds hardlinks; loaded from there the loader looks in
    _rocm_sdk_devel/.kpack, which does not exist. A symlinked copy resolves next to its target."""
    tree = therock_tree(kbuild, tmp_path, artifacts=("blas_lib",), arches=("gfx90a",), devel="hardlink")
    assert os.stat(tree.root / BLAS[1:]).st_ino == os.stat(tree.root / BLAS_DEVEL[1:]).st_ino
    coverage = judge_tree(tree, "gfx90a")
    found = errors(coverage)
    assert [f.where for f in coverage.findings] == [BLAS_DEVEL]  # xnack+ mode fails alike: said in the same one
    assert "(the same in HSA_XNACK=1 mode)" in found[0].message
    assert "TheRock PR #5768" in found[0].message and f"_rocm_sdk_devel/.kpack/blas_lib_gfx90a" in found[0].evidence
    assert "symlink" in found[0].hint
    assert not coverage.covered(BLAS, "gfx90a")  # the file is one; one of its load paths fails
    symlinked = judge_tree(therock_tree(kbuild, tmp_path / "s", artifacts=("blas_lib",), arches=("gfx90a",),
                                        devel="symlink"), "gfx90a")
    assert symlinked.findings == [] and symlinked.covered(BLAS_DEVEL, "gfx90a")


def test_rocm_kpack_path_replaces_the_embedded_search_paths(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("blas_lib",), arches=("gfx90a",), devel=None)
    moved = tree.root / "archives"
    moved.mkdir()
    kpack_dir = tree.site / "_rocm_sdk_libraries" / ".kpack"
    os.rename(kpack_dir / "blas_lib_gfx90a.kpack", moved / "blas_lib_gfx90a.kpack")
    assert errors(judge_tree(tree, "gfx90a"))
    coverage = judge_tree(tree, "gfx90a", {"ROCM_KPACK_PATH": "/nowhere.kpack:/archives/blas_lib_gfx90a.kpack"})
    assert coverage.findings == [] and coverage.sources(BLAS, "gfx90a") == ["/archives/blas_lib_gfx90a.kpack"]
    coverage = judge_tree(tree, "gfx90a", {"ROCM_KPACK_PATH_PREFIX": "/archives/blas_lib_gfx90a.kpack"})
    assert coverage.findings == []
    # the loader does not expand @GFXARCH@ in environment paths
    coverage = judge_tree(tree, "gfx90a", {"ROCM_KPACK_PATH": "/archives/blas_lib_@GFXARCH@.kpack"})
    assert [f.kind for f in coverage.findings] == ["kpack-env", "kpack-coverage"]


@pytest.mark.parametrize("value,disabled", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_rocm_kpack_disable_is_one_image_level_error(kbuild, tmp_path, value, disabled):
    tree = therock_tree(kbuild, tmp_path, artifacts=("blas_lib",), arches=("gfx90a",), devel=None)
    coverage = judge_tree(tree, "gfx90a", {"ROCM_KPACK_DISABLE": value})
    if disabled:
        assert [(f.kind, f.where) for f in coverage.findings] == [("kpack-env", "image environment")]
        assert not coverage.covered(BLAS, "gfx90a")
    else:
        assert coverage.findings == [] and coverage.covered(BLAS, "gfx90a")


def test_an_archive_the_loader_cannot_open_is_skipped_and_named(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("blas_lib",), arches=("gfx90a",), devel=None)
    archive = tree.site / "_rocm_sdk_libraries" / ".kpack" / "blas_lib_gfx90a.kpack"
    archive.write_bytes(archive.read_bytes()[:100])
    coverage = judge_tree(tree, "gfx90a")
    [finding] = errors(coverage)
    assert "blas_lib_gfx90a.kpack exists but cannot be opened" in finding.message
    [opened] = coverage.archives.values()
    assert not opened.usable and opened.findings  # the reader's own finding, for the report
