"""kpack-split libraries through ``run_audit`` and ``rocstack audit``: the coverage model uses the kpack layer.

Libraries compiled by hipcc and split by the upstream rocm-kpack tool (kpack_fixtures), laid out
as the issue's user (``lib/libk.so`` + ``lib/.kpack/hip_lib_gfx90a.kpack``) and as TheRock's wheels
install them. Every case runs the real command or the library entry point on the whole tree:
TheRock#7081, pytorch#194498, TheRock PR #5768 and a stock-patchelf copy are findings; a complete
install passes; the archive is the matrix's source; the archives' code objects go through the
code-object checks (cross-checked against the upstream reader's contents).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import run_audit

from audit_helpers import run
from kpack_fixtures import SITE, kbuild, stock_patchelf, therock_tree  # noqa: F401  (kbuild is a fixture)

REPO = Path(__file__).resolve().parents[2]
TORCH_HIP = f"{SITE}/torch/lib/libtorch_hip.so"


def user_tree(kbuild, folder: Path, arches=("gfx90a",), compression: str = "none") -> Path:
    """The issue's layout: lib/libk.so split, lib/.kpack/hip_lib_<arch>.kpack beside it."""
    split = kbuild.split("hip_lib", compression)
    (folder / "lib" / ".kpack").mkdir(parents=True)
    shutil.copy2(split / "hip_lib_generic/lib/libk.so", folder / "lib/libk.so")
    for arch in arches:
        shutil.copy2(split / f"hip_lib_{arch}/lib/.kpack/hip_lib_{arch}.kpack", folder / "lib/.kpack")
    return folder


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROCM_KPACK_")}
    return subprocess.run([sys.executable, "-m", "rocstack.cli.program", "audit", *args], capture_output=True,
                          text=True, cwd=cwd, env={**clean, **(env or {})}, timeout=300)


def errors(report, check: str | None = None):
    return [f for f in report.findings if f.severity == "error" and (check is None or f.check == check)]


def row(report, suffix: str) -> dict:
    return next(r for r in report.coverage.to_dict()["rows"] if r["name"].endswith(suffix))


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_user_story_split_library_with_its_archive_beside_it_passes(kbuild, tmp_path, compression):
    """`rocstack audit lib/libk.so --arch gfx90a` with lib/.kpack/hip_lib_gfx90a.kpack beside it."""
    folder = user_tree(kbuild, tmp_path, compression=compression)
    done = cli("lib/libk.so", "--arch", "gfx90a", "--json", cwd=folder)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "pass" and report["counts"]["error"] == 0
    [library] = report["coverage"]["rows"]
    archive = str(folder / "lib/.kpack/hip_lib_gfx90a.kpack")
    assert library["name"] == "lib/libk.so" and library["sources"] == ["kpack"]
    assert library["cells"]["gfx90a"] == {"status": "covered", "sources": ["kpack"], "archives": [archive]}
    assert [u["where"] for u in library["units"]] == ["lib/libk.so#0", "lib/libk.so#1"]  # two translation units
    assert all(u["targets"] == ["gfx90a"] for u in library["units"])
    files = {f["path"]: f for f in report["files"]}
    assert files["lib/libk.so"]["fatbin"]["split"] == "kpack"
    assert files["lib/libk.so"]["fatbin"]["keys"] == ["lib/libk.so#0", "lib/libk.so#1"]
    # the archive's code objects went through the code-object audit: the same entries the upstream reader sees
    upstream = kbuild.upstream_read(Path(archive))
    objects = files[archive]["code_objects"]
    assert files[archive]["kind"] == "kpack-archive"
    assert sorted(o["where"].rsplit(" ", 2)[1] for o in objects) == sorted(upstream["kernels"])
    assert {o["target_id"] for o in objects} == {"gfx90a"}
    kernels = {k["name"] for o in objects for k in o["kernels"]}
    assert {"_Z5scalePffi", "_Z3addPfPKfi"} <= kernels
    scratch = [f for f in report["findings"] if f["check"] == "code-object" and f["file"] == archive]
    assert scratch and "scratch" in scratch[0]["message"]  # gather_private's stack array
    table = cli("lib/libk.so", "--arch", "gfx90a", cwd=folder)
    assert table.returncode == 0 and f"K lib/libk.so: gfx90a from {archive}" in table.stdout


def test_missing_arch_archive_is_one_error_naming_it(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path)
    done = cli("lib/libk.so", "--arch", "gfx90a,gfx1030", "--json", cwd=folder)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["verdict"] == "fail"
    [error] = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["file"] == "lib/libk.so" and error["check"] == "arch-coverage"
    assert "no kpack archive for gfx1030" in error["message"] and "hipErrorFileNotFound" in error["message"]
    assert "hip_lib_gfx1030.kpack" in error["evidence"] and "hip_lib_gfx1030.kpack" in error["hint"]
    cells = report["coverage"]["rows"][0]["cells"]
    assert cells["gfx90a"]["status"] == "covered" and cells["gfx1030"]["status"] == "missing"
    assert "no archive found" in cells["gfx1030"]["detail"]


def test_without_arch_the_columns_are_the_installed_archives(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path, arches=("gfx90a", "gfx1030"))
    report = run_audit([folder / "lib/libk.so"])
    assert report.verdict == "pass" and report.coverage.arches == ["gfx90a", "gfx1030"]
    assert {a: c["status"] for a, c in row(report, "libk.so")["cells"].items()} == \
        {"gfx90a": "covered", "gfx1030": "covered"}
    assert report.files[0].fatbin["targets"] == ["gfx1030", "gfx90a"]


def test_split_library_without_any_archive_is_never_no_gpu_code(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path, arches=())
    report = run_audit([folder / "lib/libk.so"])
    [error] = errors(report)
    assert "split out into kpack archives, and none is installed" in error.message
    assert ".kpack/hip_lib_@GFXARCH@.kpack" in error.message and "hipErrorFileNotFound" in error.message
    assert not any("no GPU code" in f.message or "corrupt" in f.message for f in report.findings)


def test_archive_named_alone_is_audited(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path)
    report = run_audit([folder / "lib/.kpack/hip_lib_gfx90a.kpack"])
    [summary] = report.files
    assert summary.kind == "kpack-archive" and len(summary.code_objects) == 3  # libk #0, #1, librdc #0
    assert errors(report) == []


def test_damaged_archive_is_one_finding_through_the_command(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path)
    archive = folder / "lib/.kpack/hip_lib_gfx90a.kpack"
    data = bytearray(archive.read_bytes())
    struct.pack_into("<Q", data, 8, len(data) + 4096)  # TOC offset past EOF
    archive.write_bytes(bytes(data))
    done = cli("lib/libk.so", "--arch", "gfx90a", "--json", cwd=folder)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    by_file = {f["file"]: f["message"] for f in report["findings"] if f["severity"] == "error"}
    assert "lies outside" in by_file[str(archive)]
    assert "exists but cannot be opened" in by_file["lib/libk.so"]


def test_environment_steers_the_archives_through_the_command(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    os.rename(folder / "lib/.kpack/hip_lib_gfx90a.kpack", moved / "gfx90a.kpack")
    assert cli("lib/libk.so", "--arch", "gfx90a", cwd=folder).returncode == 1
    flag = cli("lib/libk.so", "--arch", "gfx90a", "--json", "--env", f"ROCM_KPACK_PATH={moved}/gfx90a.kpack",
               cwd=folder)
    assert flag.returncode == 0, flag.stdout
    assert json.loads(flag.stdout)["coverage"]["rows"][0]["cells"]["gfx90a"]["archives"] == [str(moved / "gfx90a.kpack")]
    # on this machine (--sysroot /) the process's own ROCM_KPACK_* apply; --env wins over them
    process = cli("lib/libk.so", "--arch", "gfx90a", cwd=folder, env={"ROCM_KPACK_PATH": f"{moved}/gfx90a.kpack"})
    assert process.returncode == 0, process.stdout
    disabled = cli("lib/libk.so", "--arch", "gfx90a", "--env", "ROCM_KPACK_DISABLE=1", cwd=folder,
                   env={"ROCM_KPACK_PATH": f"{moved}/gfx90a.kpack"})
    assert disabled.returncode == 1 and "ROCM_KPACK_DISABLE turns kpack off" in disabled.stdout
    bad = cli("lib/libk.so", "--env", "ROCM_KPACK_PATH", cwd=folder)
    assert bad.returncode != 0 and bad.stderr.strip().startswith("error: --env 'ROCM_KPACK_PATH' is not KEY=VALUE")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_therock_tree_complete_install_passes_its_kpack_checks(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, arches=("gfx90a", "gfx1030"), devel="symlink")
    report = run_audit([tree.site, tree.root / "opt/rocm"], targets=parse_arch_list("gfx90a,gfx1030"),
                       sysroot=tree.root)
    kpack_checks = ("arch-coverage", "hip-fatbin", "declared-arches")
    assert [f for f in report.findings if f.check in kpack_checks and f.severity != "info"] == []
    torch = row(report, "torch/lib/libtorch_hip.so")["cells"]
    assert torch["gfx90a"]["archives"] == [str(tree.site / "torch/.kpack/torch_gfx90a.kpack")]
    rdc = row(report, "opt/rocm/lib/librdc.so")
    assert [u["where"] for u in rdc["units"]] == ["lib/librdc.so#0"]  # -fgpu-rdc: registered once
    assert {f.kind for f in report.files} >= {"shared-object", "kpack-archive"}


def test_therock_7081_incomplete_overlay_is_an_error_through_the_audit(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "torch_xnack"), arches=("gfx90a",))
    report = run_audit([tree.site], targets=parse_arch_list("gfx90a"), sysroot=tree.root)
    shadowed = [f for f in errors(report, "arch-coverage") if f.file == str(tree.root / TORCH_HIP)]
    assert shadowed and all("TheRock#7081" in f.message for f in shadowed)
    assert "remove the incomplete overlay torch_gfx90a:xnack-.kpack" in shadowed[0].hint
    cell = row(report, "torch/lib/libtorch_hip.so")["cells"]["gfx90a"]
    assert cell["status"] == "missing" and "shadows" in cell["detail"]
    assert row(report, "torch/lib/libtorch_xnack.so")["cells"]["gfx90a"]["status"] == "covered"
    # the coverage model adds no second, vaguer finding for the same library
    assert not any("hipErrorNoBinaryForGpu ('Unable" in f.message for f in report.findings)


def test_pytorch_194498_missing_group_archive_names_the_package(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "aotriton"), arches=("gfx1030",),
                        drop=("aotriton_gfx1030.kpack",))
    report = run_audit([tree.site], targets=parse_arch_list("gfx1030"), sysroot=tree.root)
    [error] = errors(report, "arch-coverage")
    assert error.file.endswith("torch/lib/libaotriton_v2.so") and "pytorch#194498" in error.message
    assert error.hint.startswith("install amd-torch-device-gfx1030")
    assert row(report, "torch/lib/libtorch_hip.so")["cells"]["gfx1030"]["status"] == "covered"


def test_therock_pr_5768_hardlinked_devel_copy_is_a_partial_cell(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("blas_lib",), arches=("gfx90a",), devel="hardlink")
    libraries = tree.site / "_rocm_sdk_libraries"
    report = run_audit([libraries], targets=parse_arch_list("gfx90a"), sysroot=tree.root)  # the devel copy not named
    [error] = errors(report, "arch-coverage")  # about the library audited, loaded from its copy
    assert error.file == str(libraries / "lib/libblas_lib.so") and "TheRock PR #5768" in error.message
    assert error.message.startswith(f"/{SITE}/_rocm_sdk_devel/lib/libblas_lib.so: no kpack archive for gfx90a")
    cell = row(report, "libblas_lib.so")["cells"]["gfx90a"]
    assert cell["status"] == "partial" and "_rocm_sdk_devel/lib/libblas_lib.so" in cell["detail"]
    assert cell["archives"] == [str(libraries / ".kpack/blas_lib_gfx90a.kpack")]


def test_stock_patchelf_copy_is_an_integrity_error_through_the_audit(kbuild, tmp_path):
    folder = user_tree(kbuild, tmp_path)
    run([str(stock_patchelf()), "--set-rpath", "$ORIGIN/../lib64:$ORIGIN/a/long/enough/path/to/need/more/room",
         str(folder / "lib/libk.so")])
    report = run_audit([folder / "lib/libk.so"], targets=parse_arch_list("gfx90a"))
    [error] = errors(report)
    assert error.check == "input" and "PT_PHDR" in error.message and "patchelf" in error.hint
    assert row(report, "libk.so")["cells"]["gfx90a"]["status"] == "covered"  # its kpack metadata still resolves


def test_one_component_mapping_judges_several_paths_together(kbuild, tmp_path):
    tree = therock_tree(kbuild, tmp_path, artifacts=("torch", "blas_lib"), arches=("gfx90a",), devel=None)
    torch, blas = tree.site / "torch", tree.site / "_rocm_sdk_libraries"
    report = run_audit([torch, blas], targets=parse_arch_list("gfx90a"), sysroot=tree.root,
                       component={str(torch): "torch 2.12", str(blas): "rocm-sdk-libraries 7.14"})
    assert [c["name"] for c in report.coverage.to_dict()["components"]] == ["torch 2.12", "rocm-sdk-libraries 7.14"]
    assert {r["component"] for r in report.coverage.to_dict()["rows"]} == {"torch 2.12", "rocm-sdk-libraries 7.14"}


def test_the_four_real_failures_through_the_command(kbuild, tmp_path):
    """TheRock#7081, pytorch#194498, TheRock PR #5768 and a stock patchelf, in one TheRock-like root, through
    `rocstack audit --sysroot`: one finding each on the library concerned, exit 1, no traceback."""
    tree = therock_tree(kbuild, tmp_path / "root", arches=("gfx90a",), devel="hardlink",
                        artifacts=("torch", "torch_xnack", "aotriton", "blas_lib", "hip_lib"),
                        drop=("aotriton_gfx90a.kpack",))
    run([str(stock_patchelf()), "--set-rpath", "$ORIGIN/../lib64:$ORIGIN/a/long/enough/path/to/need/more/room",
         str(tree.root / "opt/rocm/lib/libk.so")])
    done = cli(str(tree.site / "torch"), str(tree.site / "_rocm_sdk_libraries"), str(tree.root / "opt/rocm"),
               "--sysroot", str(tree.root), "--arch", "gfx90a", "--json", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    found: dict[str, list[str]] = {}
    for f in report["findings"]:
        if f["severity"] == "error" and f["check"] in ("arch-coverage", "hip-fatbin", "input"):
            found.setdefault(os.path.relpath(f["file"], tree.root), []).append(f["message"])
    assert set(found) == {TORCH_HIP, f"{SITE}/torch/lib/libaotriton_v2.so",
                          f"{SITE}/_rocm_sdk_libraries/lib/libblas_lib.so", "opt/rocm/lib/libk.so"}
    assert all("TheRock#7081" in m for m in found[TORCH_HIP])
    assert ["pytorch#194498" in m for m in found[f"{SITE}/torch/lib/libaotriton_v2.so"]] == [True]
    assert ["TheRock PR #5768" in m for m in found[f"{SITE}/_rocm_sdk_libraries/lib/libblas_lib.so"]] == [True]
    assert ["no PT_LOAD maps it" in m for m in found["opt/rocm/lib/libk.so"]] == [True]
