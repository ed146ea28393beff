"""The any-image parts that need no engine: stream extraction, target choice, inventory, TunableOp, levels.

Real inputs where it matters: ELF libraries compiled here by gcc, a tar stream like an
engine export (made by Python's tarfile, which the engine's own exporter matches), the
probe run by a real interpreter from the staged directory alone.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rocstack.arches import parse_arch_list
from rocstack.contracts import GPU_VERIFIED, STATIC_ONLY, derive_level
from rocstack.errors import RocstackError
from rocstack.validate import tunableop
from rocstack.validate.imagefs import extract_stream, is_wanted_binary
from rocstack.validate.inventory import Inventory, upstream_version
from rocstack.validate.targets import choose_targets, parse_names

ELF_SO = b"\x7fELF\x02\x01\x01" + bytes(11) + (62).to_bytes(2, "little") + bytes(44)
ELF_AMDGPU = b"\x7fELF\x02\x01\x01" + bytes(11) + (224).to_bytes(2, "little") + bytes(44)


def _stream(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> list[bytes]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return [data[i:i + 7000] for i in range(0, len(data), 7000)]  # chunks, as the engine sends them


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_extraction_keeps_what_the_audit_reads_and_nothing_else(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    stats = extract_stream(_stream([
        ("usr/lib/x86_64-linux-gnu/libfoo.so.1.2", ELF_SO + b"x" * 5000),
        _link("usr/lib/x86_64-linux-gnu/libfoo.so.1", "libfoo.so.1.2"),
        _link("usr/lib/x86_64-linux-gnu/libfoo-copy.so.1", "usr/lib/x86_64-linux-gnu/libfoo.so.1.2", tarfile.LNKTYPE),
        ("opt/rocm-7.0.0/lib/rocblas/library/Kernels.so-000-gfx942.hsaco", ELF_AMDGPU),
        ("opt/rocm-7.0.0/lib/rocblas/library/TensileLibrary_gfx942.co", b"CCOB" + bytes(60)),
        ("opt/rocm-7.0.0/lib/rocblas/library/TensileLibrary_gfx942.dat", b"\x82\xa3msgpack"),
        ("opt/rocm-7.0.0/.info/version", b"7.0.0-38\n"),
        ("usr/include/hip/hip_runtime.h", b"#pragma once\n"),
        ("usr/lib/libstatic.a", b"!<arch>\n" + bytes(100)),
        ("usr/bin/ls", ELF_SO),
        ("usr/bin/python3.12", ELF_SO),
        ("var/lib/dpkg/status", b"Package: x\nStatus: install ok installed\n"),
        ("proc/self/maps", b"nothing"),
        ("opt/venv/lib/python3.12/site-packages/torch/version.py", b"hip = '7.0.0'\n"),
        ("opt/venv/lib/python3.12/site-packages/torch/__init__.py", b"import os\n"),
        ("work/tunableop_results0.csv", b"Validator,PT_VERSION,2.5.1\n"),
    ]), root)
    kept = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())
    assert kept == sorted([
        "usr/lib/x86_64-linux-gnu/libfoo.so.1.2", "usr/lib/x86_64-linux-gnu/libfoo.so.1",
        "usr/lib/x86_64-linux-gnu/libfoo-copy.so.1",
        "opt/rocm-7.0.0/lib/rocblas/library/Kernels.so-000-gfx942.hsaco",
        "opt/rocm-7.0.0/lib/rocblas/library/TensileLibrary_gfx942.co",
        "opt/rocm-7.0.0/lib/rocblas/library/TensileLibrary_gfx942.dat", "opt/rocm-7.0.0/.info/version",
        "usr/bin/python3.12", "var/lib/dpkg/status",
        "opt/venv/lib/python3.12/site-packages/torch/version.py", "work/tunableop_results0.csv"])
    assert (root / "usr/lib/x86_64-linux-gnu/libfoo.so.1.2").read_bytes() == ELF_SO + b"x" * 5000
    assert os.path.samefile(root / "usr/lib/x86_64-linux-gnu/libfoo-copy.so.1", root / "usr/lib/x86_64-linux-gnu/libfoo.so.1.2")
    assert stats.files == 9 and stats.hardlinks == 1 and stats.symlinks == 1 and stats.streamed_bytes > 5000


def test_extraction_never_writes_outside_its_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    stats = extract_stream(_stream([
        _link("lib", str(outside)),  # an absolute symlink: kept as a link, never followed
        ("lib/libevil.so", ELF_SO),
        ("../escape.so", ELF_SO),
        _link("usr/lib/libhard.so", "/etc/shadow", tarfile.LNKTYPE),
    ]), root)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escape.so").exists()
    assert os.readlink(root / "lib") == str(outside)
    assert "lib/libevil.so" in stats.refused and not (root / "usr/lib/libhard.so").exists()


def test_a_broken_or_truncated_stream_is_one_error(tmp_path):
    chunks = _stream([("usr/lib/libfoo.so", ELF_SO + b"y" * 20000)])
    with pytest.raises(RocstackError, match="corrupt after") as info:
        extract_stream([b"".join(chunks)[:9000]], tmp_path)
    assert "\n" not in info.value.one_line()

    def broken():
        yield chunks[0]
        raise ConnectionError("engine went away")

    with pytest.raises(RocstackError, match="engine went away"):
        extract_stream(broken(), tmp_path / "b")


def test_device_code_is_recognised_by_content_not_name():
    assert is_wanted_binary("opt/x/kernels/gfx942/anything.bin", ELF_AMDGPU)
    assert is_wanted_binary("site/aiter/asm/foo.co", b"__CLANG_OFFLOAD_BUNDLE__")
    assert is_wanted_binary("site/torch/.kpack/torch_gfx942.kpack", b"KPAK\x01")
    assert is_wanted_binary("opt/rocm/share/miopen/db/gfx942.kdb", b"SQLite format 3\x00")
    assert not is_wanted_binary("var/lib/some.sqlite", b"SQLite format 3\x00")
    assert not is_wanted_binary("usr/bin/bash", ELF_SO)


def test_targets_come_from_the_first_source_that_names_arches():
    cli = parse_arch_list("gfx950")
    env = {"PYTORCH_ROCM_ARCH": "gfx90a;gfx942;native", "GPU_ARCHS": "gfx1100"}
    assert choose_targets(cli=cli, labels={}, env=env, torch_arches=None, dpkg_declared={}).names == ["gfx950"]
    labelled = choose_targets(cli=None, labels={"io.rocstack.arches": "gfx942:sramecc+:xnack-"}, env=env,
                              torch_arches=None, dpkg_declared={})
    assert labelled.names == ["gfx942:sramecc+:xnack-"] and labelled.source == "label io.rocstack.arches"
    from_env = choose_targets(cli=None, labels={}, env=env, torch_arches=None, dpkg_declared={})
    assert from_env.names == ["gfx90a", "gfx942"] and from_env.source == "env PYTORCH_ROCM_ARCH" and from_env.ignored == ["native"]
    torch = choose_targets(cli=None, labels={}, env={}, torch_arches=(["gfx942", "gfx90a"], "/x/libtorch_hip.so"),
                           dpkg_declared={})
    assert torch.names == ["gfx942", "gfx90a"] and torch.source.startswith("torch")
    dpkg = choose_targets(cli=None, labels={}, env={}, torch_arches=None,
                          dpkg_declared={"librocblas5": ["gfx90a", "gfx942", "gfx1100"], "libhipblaslt1": ["gfx90a", "gfx1100"]})
    assert dpkg.names == ["gfx90a", "gfx1100"] and dpkg.source == "dpkg X-Rocm-Gpu-Architecture"
    none = choose_targets(cli=None, labels={}, env={"GPU_ARCHS": "native"}, torch_arches=None, dpkg_declared={})
    assert none.targets == [] and "pass --arch" in none.detail
    assert parse_names("gfx9-4-generic, gfx942 sm_90")[1] == ["gfx9-4-generic", "sm_90"]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    files = {
        "var/lib/dpkg/status": (
            "Package: librocblas5\nStatus: install ok installed\nVersion: 7.2.4-1~exp1\nArchitecture: amd64\n"
            "Maintainer: Debian ROCm Team <debian-ai@lists.debian.org>\nX-Rocm-Gpu-Architecture: gfx90a gfx942\n\n"
            "Package: libamdhip64-7\nStatus: install ok installed\nVersion: 7.2.4-1~exp2\nArchitecture: amd64\n"
            "Homepage: https://github.com/ROCm/clr\n\n"
            "Package: coreutils\nStatus: install ok installed\nVersion: 9.1-1\n\n"
            "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"),
        "var/lib/dpkg/info/librocblas5:amd64.list": "/.\n/usr/lib/x86_64-linux-gnu/librocblas.so.5.2\n",
        "usr/lib/x86_64-linux-gnu/librocblas.so.5.2": "ELF",
        "opt/venv/lib/python3.12/site-packages/torch-2.5.1+rocm6.2.dist-info/METADATA": "Name: torch\nVersion: 2.5.1+rocm6.2\n",
        "opt/venv/lib/python3.12/site-packages/torch-2.5.1+rocm6.2.dist-info/RECORD": "torch/__init__.py,,\n",
        "opt/venv/lib/python3.12/site-packages/torch/version.py": "__version__ = '2.5.1+rocm6.2'\nhip: Optional[str] = '6.2.41133-dd7f95766'\n",
        "opt/venv/bin/python3.12": "ELF",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "opt/venv/bin/python3").symlink_to("python3.12")
    return root


def test_inventory_reads_dpkg_distributions_interpreter_and_versions(tmp_path):
    from rocstack.validate.inventory import torch_hip

    inventory = Inventory.read(_tree(tmp_path), {"Env": ["PATH=/opt/venv/bin:/usr/bin", "LD_LIBRARY_PATH=/opt/rocm/lib"]})
    assert inventory.interpreter.path == "/opt/venv/bin/python3" and inventory.interpreter.version == "3.12"
    assert [p.name for p in inventory.packages] == ["librocblas5", "libamdhip64-7", "coreutils"]
    assert [p.name for p in inventory.rocm_packages()] == ["librocblas5", "libamdhip64-7"]
    assert inventory.packages[0].files == ["/usr/lib/x86_64-linux-gnu/librocblas.so.5.2"]
    versions = inventory.versions()
    assert versions["torch"].value == "2.5.1+rocm6.2"
    assert versions["rocm"].value == "7.2.4" and "libamdhip64-7" in versions["rocm"].source
    assert versions["rocblas"].value == "5.2"  # the library's own version, not Debian's package (ROCm) version
    assert versions["hipblaslt"] is None
    assert torch_hip(inventory.root, inventory.distributions) == "6.2.41133-dd7f95766"
    assert upstream_version("1:7.2.4+dfsg-1~exp1") == "7.2.4"
    assert Inventory.read(_tree(tmp_path / "b"), {"Env": ["PATH=/bin"]}).interpreter is None


def test_dpkg_status_is_read_once_for_the_inventory_and_the_audit_s_declarations(tmp_path):
    """One parser of dpkg's status (rocstack.audit.declared): the inventory keeps installed packages, the
    declarations every package whose files are on disk (an interrupted install too), with the same files."""
    from rocstack.audit.declared import dpkg_status, from_dpkg

    root = _tree(tmp_path)
    status = root / "var/lib/dpkg/status"
    status.write_text(status.read_text() + (
        "\nPackage: librccl1\nStatus: install reinstreq unpacked\nVersion: 7.2.4-1\nArchitecture: amd64\n"
        "Description: ROCm communication collectives\n one more line\n .\n and a third\n"
        "X-Rocm-Gpu-Architecture: gfx942\n"))
    (root / "var/lib/dpkg/info/librccl1.list").write_text("/.\n/usr/lib/x86_64-linux-gnu/librccl.so.1\n")
    inventory = Inventory.read(root, {})
    assert [p.name for p in inventory.packages] == ["librocblas5", "libamdhip64-7", "coreutils"]
    declared = {d.package: d for d in from_dpkg(str(root))}
    assert sorted(declared) == ["librccl1", "librocblas5"] and declared["librccl1"].arches == ["gfx942"]
    assert declared["librocblas5"].files == {os.path.realpath(root / p.lstrip("/")) for p in inventory.packages[0].files}
    rccl = next(f for f in dpkg_status(root) if f["Package"] == "librccl1")
    assert rccl["Description"] == "ROCm communication collectives\none more line\n.\nand a third"


def test_tunableop_lines_are_checked_against_the_image(tmp_path):
    inventory = Inventory.read(_tree(tmp_path), {})
    table = ("Validator,PT_VERSION,2.5.1\nValidator,ROCM_VERSION,6.2.0.0-66-d4bd1ad\nValidator,ROCBLAS_VERSION,5.2.0-7df0aa33\n"
             "Validator,HIPBLASLT_VERSION,800-3c8f0c9\nValidator,GCN_ARCH_NAME,gfx90a:sramecc+:xnack-\n"
             "GemmTunableOp_float_NT,nt_25088_4096_64,1219,1.262\n")
    result = tunableop.check_table("/work/tunableop_results0.csv", table, inventory.versions(), parse_arch_list("gfx942"))
    errors = {f.key: f for f in result.findings if f.severity == "error"}
    assert set(errors) == {"ROCM_VERSION", "GCN_ARCH_NAME"} and result.status == "fail"
    assert errors["ROCM_VERSION"].line == 2 and "7.2.4" in errors["ROCM_VERSION"].message
    assert errors["GCN_ARCH_NAME"].line == 5 and "gfx942" in errors["GCN_ARCH_NAME"].message
    assert set(result.verified) == {"PT_VERSION", "ROCBLAS_VERSION"} and result.results == 1
    assert [f.key for f in result.findings if f.severity == "warning"] == ["HIPBLASLT_VERSION"]  # no hipBLASLt to compare
    assert tunableop.hipblaslt_numbers("800-3c8f0c9") == [0, 8, 0] and tunableop.hipblaslt_numbers("100100-ab") == [1, 1, 0]
    stale = tunableop.check_table("/t.csv", "Validator,PT_VERSION,2.4.0\n", inventory.versions(), [])
    assert stale.status == "fail" and "line 1" in stale.findings[0].message and "2.5.1" in stale.findings[0].message
    missing = tunableop.check_table("/t.csv", "GemmTunableOp_float_NT,nt_1_1_1,1,1\n", inventory.versions(), [])
    assert missing.status == "fail" and "PT_VERSION" in missing.findings[0].message


def test_tunableop_file_names_follow_torch(tmp_path):
    assert tunableop.name_patterns({}, "/work") == ("work/tunableop_results*.csv",)
    assert tunableop.name_patterns({"PYTORCH_TUNABLEOP_FILENAME": "/opt/t/res_%d.csv"}, None) == ("opt/t/res_*.csv",)
    assert tunableop.name_patterns({"PYTORCH_TUNABLEOP_FILENAME": "tuned.csv"}, None) == ("tuned*.csv",)
    root = tmp_path / "r"
    for name in ("opt/t/res_0.csv", "srv/tunableop_results1.csv", "srv/other.csv"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    assert tunableop.find_tables(root, ("opt/t/res_*.csv",)) == ["/opt/t/res_0.csv", "/srv/tunableop_results1.csv"]


def test_report_level_and_attestation_level_are_one_rule():
    from rocstack.registry.statement import verification_level
    from rocstack.validate.report import REQUIRE_GPU_CHECK, build_report

    def suite(gpu_status: str, device: dict) -> dict:
        return {"schema": "rocstack.validation-suite/v1", "environment": {"gpu": device}, "checks": [
            {"name": "audit:x", "category": "audit", "status": "pass", "evidence": "", "duration_s": 0},
            {"name": "gpu-arch", "category": "python", "status": gpu_status, "evidence": "no GPU: none here", "duration_s": 0}]}

    none = {"available": False, "reason": "none here"}
    amd = {"available": True, "vendor": "amd", "name": "AMD Instinct MI300X", "arch": "gfx942",
           "target_id": "gfx942:sramecc+:xnack-", "driver": "amdgpu 6.10.5", "runtime": "hip 7.0"}
    static = build_report(suite("skip", none), target="image", image={"id": "sha256:1"}, gpu_access={}, duration_s=1)
    gpu = build_report(suite("pass", amd), target="image", image={"id": "sha256:1"}, gpu_access={}, duration_s=1)
    assert static.data["level"] == STATIC_ONLY and gpu.data["level"] == GPU_VERIFIED
    assert gpu.data["gpu"]["driver"] == "amdgpu 6.10.5" and gpu.data["gpu"]["target_id"] == "gfx942:sramecc+:xnack-"
    for report in (static, gpu):  # the attestation derives what the report states
        legacy = {k: v for k, v in report.data.items() if k not in ("level", "level_reason")}
        assert verification_level(legacy, True).level == report.data["level"] == verification_level(report.data, True).level
    required = build_report(suite("skip", none), target="image", image={"id": "sha256:1"}, gpu_access={}, duration_s=1,
                            require_gpu=True)
    assert required.verdict == "fail" and required.checks[-1]["name"] == REQUIRE_GPU_CHECK
    assert "static-only" in required.checks[-1]["evidence"]
    assert derive_level([], None)[0] == STATIC_ONLY


def test_the_probe_runs_from_the_staged_files_alone(tmp_path):
    """The mount holds everything the probe imports: run it with site-packages off and only the stage on the path."""
    from rocstack.validate.inimage import stage_probe

    stage = stage_probe(tmp_path / "lib", {"targets": ["gfx942"], "imports": ["json", "no_such_module_here"]})
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-S", "-B", "-m", "rocstack_validation.probe", "--spec",
                           str(stage / "spec.json"), "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(stage), "PATH": os.environ["PATH"]}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["import:json"]["status"] == "pass"
    assert checks["import:no_such_module_here"]["status"] == "fail"
    assert "No module named" in checks["import:no_such_module_here"]["evidence"]
    assert checks["torch-variant"]["status"] == "skip" and checks["gpu-arch"]["status"] == "skip"
    assert not list(stage.rglob("__pycache__"))  # nothing written into the mounted suite


FAKE_ROCM_TORCH = """\
import types
__version__ = "2.9.0+rocm7.0"
version = types.SimpleNamespace(hip="7.0.51831", cuda=None)
cuda = types.SimpleNamespace(get_arch_list=lambda: [], is_available=lambda: False)
_C = types.SimpleNamespace(_cuda_getArchFlags=lambda: "gfx90a;gfx942;gfx950")
"""


@pytest.mark.parametrize("delivered, status, named", [
    (["gfx90a", "gfx942:sramecc+:xnack-"], "fail", "names gfx950 but libtorch_hip.so carries no code"),
    (["gfx90a", "gfx942", "gfx950", "gfx1100"], "pass", "also carries gfx1100"),
    (None, "skip", "no torch/lib/libtorch_hip.so"),
])
def test_torch_declared_arches_against_what_libtorch_hip_delivers(tmp_path, delivered, status, named):
    """torch's compiled arch list (read from _cuda_getArchFlags when no device is visible) against the targets the
    static audit read in libtorch_hip.so: a named arch without code is hipErrorNoBinaryForGpu at the first op."""
    from rocstack.validate.inimage import stage_probe

    torch = {"version": "2.9.0+rocm7.0", "site": "/x"}
    if delivered is not None:
        torch.update(offload_targets=delivered, offload_library="/x/torch/lib/libtorch_hip.so")
    stage = stage_probe(tmp_path / "lib", {"targets": ["gfx942"], "imports": [], "torch": torch})
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(FAKE_ROCM_TORCH)
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, "-S", "-B", "-m", "rocstack_validation.probe", "--spec",
                           str(stage / "spec.json"), "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": f"{stage}:{fake}", "PATH": os.environ["PATH"]}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check = {c["name"]: c for c in json.loads(out.read_text())["checks"]}["torch-delivers"]
    assert check["status"] == status and named in check["evidence"], check
    if status == "fail":
        assert check["details"]["declared_not_delivered"] == ["gfx950"]


def _sarif_schema() -> dict:
    """SARIF 2.1.0's published JSON schema, as Microsoft ships it in @microsoft/jest-sarif (npm), cached."""
    import shutil
    import tarfile as tarmod

    from valtest_images import cache_dir

    folder = cache_dir() / "sarif-schema-jest-sarif-1.0.0-beta.0"
    schema = folder / "package" / "lib" / "schemas" / "sarif-2.1.0-rtm.5.json"
    if not schema.is_file():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: cannot fetch SARIF's published schema")
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "pack", "@microsoft/jest-sarif@1.0.0-beta.0"], cwd=folder, capture_output=True,
                              text=True, timeout=300)
        packs = list(folder.glob("*.tgz"))
        if done.returncode != 0 or not packs:
            pytest.skip(f"npm pack @microsoft/jest-sarif failed: {done.stderr.strip()[-200:]}")
        with tarmod.open(packs[0]) as tar:
            tar.extract("package/lib/schemas/sarif-2.1.0-rtm.5.json", folder, filter="data")
    return json.loads(schema.read_text())


def test_sarif_validates_against_the_published_schema_with_stable_rule_ids():
    jsonschema = pytest.importorskip("jsonschema")
    from rocstack.validate.report import build_report
    from rocstack.validate.sarif import render_sarif

    finding = {"check": "arch-coverage", "severity": "error", "file": "/opt/venv/lib/python3.12/site-packages/x/_C.so",
               "message": "no code object runs on gfx942", "evidence": "built for: gfx90a", "hint": "rebuild for gfx942"}
    suite = {"schema": "rocstack.validation-suite/v1", "environment": {"gpu": {"available": False, "reason": "none"}},
             "checks": [
                 {"name": "audit:x", "category": "audit", "status": "fail", "evidence": "1 error", "duration_s": 0,
                  "component": "x 1.0", "details": {"findings": [finding]}},
                 {"name": "tunableop:/t.csv", "category": "audit", "status": "fail", "evidence": "stale", "duration_s": 0,
                  "details": {"findings": [{"severity": "error", "file": "/t.csv", "line": 2, "key": "ROCM_VERSION",
                                            "message": "line 2: ROCM_VERSION is 6.2 but the image has 7.2.4"}]}},
                 {"name": "import:x", "category": "python", "status": "fail", "evidence": "undefined symbol: foo",
                  "duration_s": 0, "component": "x 1.0"},
                 {"name": "gpu-arch", "category": "python", "status": "skip", "evidence": "no GPU", "duration_s": 0}]}
    report = build_report(suite, target="image", image={"id": "sha256:1"}, gpu_access={}, duration_s=1,
                          extra={"mode": "any-image"})
    sarif = json.loads(render_sarif(report, project_root=None))
    jsonschema.validate(sarif, _sarif_schema())
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["rocstack/audit/arch-coverage", "rocstack/tunableop/validator",
                                              "rocstack/validate/import"]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "opt/venv/lib/python3.12/site-packages/x/_C.so", "uriBaseId": "IMAGEROOT"}
    assert results[1]["locations"][0]["physicalLocation"]["region"] == {"startLine": 2}
    assert "logicalLocations" in results[2]["locations"][0]
    assert sarif["runs"][0]["properties"]["level"] == "static-only"


def test_sarif_points_a_built_component_at_its_recipe_line():
    from rocstack.validate.report import build_report
    from rocstack.validate.sarif import render_sarif

    repo = Path(__file__).resolve().parents[2]
    suite = {"schema": "rocstack.validation-suite/v1", "checks": [
        {"name": "import:xformers", "category": "python", "status": "fail", "evidence": "ImportError", "duration_s": 0,
         "component": "xformers"}]}
    report = build_report(suite, target="image", image={"id": "sha256:1"}, gpu_access={}, duration_s=1,
                          extra={"mode": "rocstack-image"})
    location = json.loads(render_sarif(report, repo))["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    recipe = (repo / "recipes/components/xformers.yaml").read_text().splitlines()
    assert location["artifactLocation"]["uri"] == "recipes/components/xformers.yaml"
    assert recipe[location["region"]["startLine"] - 1].strip().startswith("imports:")


def test_github_annotations_stay_within_the_step_limit():
    from rocstack.validate.ci import MAX_ERRORS, github_annotations, step_summary
    from rocstack.validate.report import build_report

    checks = [{"name": f"import:m{i}", "category": "python", "status": "fail", "evidence": f"50% broken,\nline {i}",
               "duration_s": 0} for i in range(25)]
    report = build_report({"schema": "rocstack.validation-suite/v1", "checks": checks}, target="image",
                          image={"id": "sha256:1"}, gpu_access={}, duration_s=1, reference="img:1")
    lines = github_annotations([report])
    errors = [ln for ln in lines if ln.startswith("::error")]
    assert len(errors) == MAX_ERRORS and "16 more failing check(s)" in errors[-1] and "import:m24" in errors[-1]
    assert "50%25 broken" in errors[0] and "\n" not in "".join(lines) and "title=img%3A1%3A import%3Am0" in errors[0]
    assert "| `img:1` | **FAIL** |" in step_summary([report])
