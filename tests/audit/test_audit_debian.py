"""Device code in Debian's ROCm 7 packages (downloaded, never installed), cross-checked with LLVM's tools.

What the packages hold was established independently of rocstack: ``clang-offload-bundler``
(Debian 12's LLVM 19 for CCOB v2, sid's LLVM 21 for v3) lists every bundle's entries and
``llvm-readobj`` names each code object's EF_AMDGPU_MACH. Host-side findings (these sid
libraries need a newer glibc than the test machine's) are not what these tests judge.
"""

from __future__ import annotations

import collections
import os
import subprocess
from pathlib import Path

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import run_audit

import debian_packages as debian
from audit_helpers import need_tool, run

DEVICE_CHECKS = {"arch-coverage", "hip-fatbin", "declared-arches", "input", "io"}
LIB = "usr/lib/x86_64-linux-gnu"


def device_findings(report, severity="error"):
    return [f for f in report.findings if f.check in DEVICE_CHECKS and f.severity == severity]


def bundler_list(command: list[str], path: Path) -> list[str]:
    return sorted(subprocess.run([*command, "--list", "--type=o", f"--input={path}"], check=True,
                                 capture_output=True, text=True, timeout=300).stdout.split())


@pytest.fixture(scope="module")
def readobj21():
    return debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/llvm-readobj")


def fatbin_file(lib: Path, folder: Path) -> Path:
    need_tool("objcopy")
    out = folder / (lib.name + ".fatbin")
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(lib), str(out)])
    return out


def test_rocfft_bundle_entries_and_declaration_match_llvm_and_the_control_file(tmp_path):
    need_tool("clang-offload-bundler-19", "dpkg")
    root = debian.tree(debian.ROCFFT)
    lib = root / LIB / "librocfft.so.0.1"
    report = run_audit([lib], targets=parse_arch_list("gfx942,gfx1102"))
    [summary] = report.files
    [bundle] = summary.fatbin["bundles"]
    assert bundle["compression"] is None and summary.fatbin["wrappers"] == 1
    ids = sorted(e["id"] for e in bundle["entries"])
    assert ids == bundler_list(["clang-offload-bundler-19"], fatbin_file(lib, tmp_path))
    assert not device_findings(report)
    # installed by the real dpkg into a private root: the declaration comes from its status file
    sysroot = tmp_path / "root"
    (sysroot / "var/lib/dpkg/info").mkdir(parents=True)
    (sysroot / "var/lib/dpkg/updates").mkdir()
    (sysroot / "var/lib/dpkg/status").write_text("")
    run(["dpkg", f"--root={sysroot}", "--force-depends", "--force-not-root", "--unpack", str(debian.deb(debian.ROCFFT))])
    installed = run_audit([sysroot / LIB / "librocfft.so.0"], sysroot=sysroot)
    [declared] = installed.declared
    control = debian.control(debian.ROCFFT)["X-Rocm-Gpu-Architecture"].split()
    assert declared["source"] == "dpkg-status" and declared["arches"] == control
    assert sorted(declared["delivered"]) == sorted(control) and declared["missing"] == declared["undeclared"] == []
    assert "gfx1102" in control  # EF_AMDGPU_MACH 0x47, unknown to rocstack before the full table


def test_hipsparselt_package_as_a_deb_tensile_database_and_fat_binary(bundler21):
    deb = debian.deb(debian.HIPSPARSELT)
    report = run_audit([deb], targets=parse_arch_list("gfx942,gfx950"))
    assert not device_findings(report), device_findings(report)
    kinds = collections.Counter(f.kind for f in report.files)
    assert kinds == {"offload-bundle": 97, "code-object": 4, "shared-object": 1}
    versions = collections.Counter((b["compression"] or {}).get("version") for f in report.files
                                   if f.kind == "offload-bundle" for b in f.fatbin["bundles"])
    assert versions == {3: 96, None: 1}
    [declared] = report.declared
    assert declared["arches"] == ["gfx942", "gfx950"] and declared["missing"] == declared["undeclared"] == []
    rows = {r["kind"]: r for r in report.coverage.to_dict()["rows"]}
    assert rows["kernel-database"]["cells"]["gfx942"]["status"] == "covered"
    assert [u["where"] for u in rows["kernel-database"]["units"]] == ["TensileLibrary_lazy_gfx942.dat",
                                                                       "TensileLibrary_lazy_gfx950.dat"]
    # the same package, unpacked by dpkg-deb: every CCOB v3 file lists the entries LLVM 21 lists
    tree = debian.tree(debian.HIPSPARSELT)
    library = tree / LIB / "hipsparselt/library"
    by_path = {f.path: f for f in run_audit([library]).files}
    for path in sorted(library.glob("*.co"))[:24]:
        summary = by_path[str(path)]
        if summary.kind == "offload-bundle":
            ours = sorted(e["id"] for b in summary.fatbin["bundles"] for e in b["entries"])
            assert ours == bundler_list(bundler21, path), path
    missing = run_audit([library], targets=parse_arch_list("gfx90a"))
    [error] = device_findings(missing)
    assert "hipErrorNoBinaryForGpu" in error.message and "gfx90a" in error.message


@pytest.mark.slow
def test_hipblaslt_has_no_gfx942_and_every_standalone_bundle_is_read(tmp_path):
    """The issue's case: 738 .co/.hsaco files, 717 CCOB v2 + 1 plain bundle + 20 code objects.

    (7.1.1's .deb declares no arches; its Tensile kernels for gfx1103 and gfx1150 carry
    EF_AMDGPU_MACH 0x44 and 0x43, names rocstack did not know before the full table.)"""
    need_tool("clang-offload-bundler-19")
    library = debian.tree(debian.HIPBLASLT) / LIB / "hipblaslt/library"
    report = run_audit([library], targets=parse_arch_list("gfx942"))
    kinds = collections.Counter(f.kind for f in report.files)
    assert kinds == {"offload-bundle": 718, "code-object": 20}
    versions = collections.Counter((b["compression"] or {}).get("version") for f in report.files
                                   if f.fatbin for b in f.fatbin["bundles"])
    assert versions == {2: 717, None: 1}
    [error] = device_findings(report)
    assert error.message.startswith("no code for gfx942 anywhere") and "hipErrorNoBinaryForGpu" in error.message
    assert report.exit_code == 1
    # LLVM 19 reads CCOB v2: the entry ids agree on a sample of the files
    by_path = {f.path: f for f in report.files}
    for path in sorted(library.glob("*.co"))[::40]:
        summary = by_path[str(path)]
        if summary.kind == "offload-bundle":
            ours = sorted(e["id"] for b in summary.fatbin["bundles"] for e in b["entries"])
            assert ours == bundler_list(["clang-offload-bundler-19"], path), path
    ok = run_audit([library], targets=parse_arch_list("gfx90a,gfx1100,gfx1103,gfx1150"))
    assert not device_findings(ok), device_findings(ok)
    machs = {obj.mach for f in ok.files for obj in f.code_objects}
    assert {0x43, 0x44, 0x47} <= machs


@pytest.mark.slow
def test_rocblas_bundles_and_kernel_database(bundler21, tmp_path):
    root = debian.tree(debian.ROCBLAS)
    lib = root / LIB / "librocblas.so.5.2"
    report = run_audit([root / LIB], targets=parse_arch_list("gfx942,gfx1102,gfx90a:xnack+"))
    assert not device_findings(report), device_findings(report)
    [summary] = [f for f in report.files if os.path.realpath(f.path) == str(lib)]
    bundles = summary.fatbin["bundles"]
    assert len(bundles) == summary.fatbin["wrappers"] == 65
    assert {b["compression"]["version"] for b in bundles} == {3}
    # LLVM 21 lists the first and the last bundle the same way
    fat = fatbin_file(lib, tmp_path).read_bytes()
    for bundle in (bundles[0], bundles[-1]):
        piece = tmp_path / f"bundle{bundle['offset']}.bin"
        piece.write_bytes(fat[bundle["offset"]:bundle["offset"] + bundle["size"]])
        assert sorted(e["id"] for e in bundle["entries"]) == bundler_list(bundler21, piece)
    database = [r for r in report.coverage.to_dict()["rows"] if r["kind"] == "kernel-database"]
    assert len(database) == 1 and len(database[0]["units"]) == 14
    assert all(not u["problems"] for u in database[0]["units"]), database[0]["units"]


@pytest.mark.slow
def test_rccl_deb_declares_and_delivers_gfx942_and_gfx950():
    report = run_audit([debian.deb(debian.RCCL)], targets=parse_arch_list("gfx942,gfx950"))
    [declared] = report.declared
    assert declared["source"] == "deb-control" and {"gfx942", "gfx950"} <= set(declared["arches"])
    assert declared["delivered"] == sorted(declared["arches"]) and declared["missing"] == declared["undeclared"] == []
    assert not device_findings(report), device_findings(report)


@pytest.mark.slow
def test_rccl_single_compressed_bundle_shared_by_all_wrappers(bundler21, tmp_path):
    root = debian.tree(debian.RCCL)
    lib = root / LIB / "librccl.so.1.0"
    report = run_audit([lib], targets=parse_arch_list("gfx942,gfx950"))
    assert not device_findings(report), device_findings(report)
    [summary] = report.files
    [bundle] = summary.fatbin["bundles"]
    assert bundle["compression"]["version"] == 3 and bundle["compression"]["uncompressed_size"] > 1 << 30
    assert summary.fatbin["wrappers"] == 38  # -fgpu-rdc: every translation unit registers the one bundle
    assert sorted(e["id"] for e in bundle["entries"]) == bundler_list(bundler21, fatbin_file(lib, tmp_path))
    control = debian.control(debian.RCCL)["X-Rocm-Gpu-Architecture"].split()
    assert {"gfx942", "gfx950"} <= set(control) <= set(summary.fatbin["targets"])


def test_every_mach_value_in_the_packages_is_named_like_llvm_names_it(readobj21):
    """Each code object's EF_AMDGPU_MACH: rocstack's name must be the one LLVM 21's readobj prints."""
    seen: dict[int, tuple[str, Path]] = {}
    for package in (debian.ROCFFT, debian.HIPSPARSELT):
        report = run_audit([debian.tree(package) / LIB])
        for summary in report.files:
            for obj in summary.code_objects:
                assert not [p for p in obj.problems if "EF_AMDGPU_MACH" in p], (summary.path, obj.problems)
                seen.setdefault(obj.mach, (obj.processor, Path(summary.path)))
    assert {0x2A, 0x33, 0x47} <= set(seen)  # gfx803, gfx1010, gfx1102: refused before the full table
    for mach, (name, _path) in sorted(seen.items()):
        header = bytearray(64)
        header[:8] = b"\x7fELF\x02\x01\x01\x40"
        header[8] = 3  # code object v5
        header[16:20] = (3).to_bytes(2, "little") + (224).to_bytes(2, "little")
        header[48:52] = mach.to_bytes(4, "little")
        header[52:54] = (64).to_bytes(2, "little")
        probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"rocstack-mach-{os.getpid()}-{mach:x}.o"
        probe.write_bytes(bytes(header))
        try:
            text = subprocess.run([*readobj21, "--file-headers", str(probe)], capture_output=True, text=True).stdout
        finally:
            probe.unlink()
        assert f"EF_AMDGPU_MACH_AMDGCN_{name.upper().replace('-', '_')} (0x{mach:X})" in text, (mach, name, text)

