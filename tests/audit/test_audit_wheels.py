"""Real third-party wheels from PyPI, read without installing (downloads cached in ROCSTACK_TEST_CACHE)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import AuditPolicy, run_audit

from audit_helpers import need_tool, pip_download, run

pytestmark = pytest.mark.slow

# FBGEMM's own post-build check (.github/scripts/fbgemm_gpu_build.bash, "required symbols" per variant)
FBGEMM_EVERY_VARIANT = ["fbgemm_gpu::asynchronous_inclusive_cumsum_cpu", "fbgemm_gpu::jagged_2d_to_dense"]
FBGEMM_GPU_VARIANTS = ["fbgemm_gpu::asynchronous_inclusive_cumsum_gpu", "fbgemm_gpu::merge_pooled_embeddings"]


@pytest.fixture(scope="module")
def fbgemm_wheel(test_cache):
    return pip_download(test_cache, "fbgemm-gpu-cpu==1.9.0", "fbgemm-gpu-cpu-1.9.0")


@pytest.fixture(scope="module")
def bnb_wheel(test_cache):
    # bitsandbytes ships libbitsandbytes_rocm*.so with compressed (CCOB v2/v3 zstd) HIP fat binaries
    return pip_download(test_cache, "bitsandbytes==0.50.2", "bitsandbytes-0.50.2")


def _policy(required):
    return AuditPolicy(name="fbgemm", required_symbols=required, required_symbols_in=["fbgemm_gpu/*.so"],
                       preload=["torch"])


def test_fbgemm_cpu_variant_passes_its_required_symbols(fbgemm_wheel):
    pytest.importorskip("torch")
    report = run_audit([fbgemm_wheel], policy=_policy(FBGEMM_EVERY_VARIANT))
    required = [f for f in report.findings if f.check == "required-symbols"]
    assert [f.severity for f in required] == ["info"], required
    assert "fbgemm_gpu_py.so" in required[0].evidence
    assert any(f.path.endswith("!fbgemm_gpu/fbgemm_gpu_py.so") for f in report.files)


def test_fbgemm_cpu_wheel_fails_the_rocm_policy_naming_gpu_symbols(fbgemm_wheel):
    report = run_audit([fbgemm_wheel], policy=_policy(FBGEMM_EVERY_VARIANT + FBGEMM_GPU_VARIANTS))
    [finding] = [f for f in report.findings if f.check == "required-symbols"]
    assert finding.severity == "error" and report.exit_code == 1
    assert "2 of 4" in finding.message
    for name in FBGEMM_GPU_VARIANTS:
        assert name in finding.message
    for name in FBGEMM_EVERY_VARIANT:
        assert name not in finding.message


_LOADER_ORACLE = r"""
import ctypes, json, os, sys
import torch  # the preload the audit models
out = {}
for path in sys.argv[1:]:
    try:
        ctypes.CDLL(path)
        out[os.path.basename(path)] = None
    except OSError as exc:
        out[os.path.basename(path)] = str(exc)
print(json.dumps(out))
"""


def test_fbgemm_audit_agrees_with_the_real_dynamic_loader(fbgemm_wheel, tmp_path):
    """The audit's verdict per library equals dlopen's after `import torch` (run in a fresh process)."""
    pytest.importorskip("torch")
    with zipfile.ZipFile(fbgemm_wheel) as archive:
        archive.extractall(tmp_path)
    libs = sorted(str(p) for p in (tmp_path / "fbgemm_gpu").glob("*.so"))
    done = subprocess.run([sys.executable, "-c", _LOADER_ORACLE, *libs], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"})
    assert done.returncode == 0, done.stderr
    loader = json.loads(done.stdout.strip().splitlines()[-1])

    report = run_audit([tmp_path / "fbgemm_gpu"], policy=AuditPolicy(preload=["torch"]))
    broken = {os.path.basename(f.file) for f in report.findings
              if f.severity == "error" and f.check in ("unresolved-symbols", "missing-needed")}
    needs = {os.path.basename(f.path): set(f.needed) for f in report.files}

    def fails(name, seen=()):
        if name in broken:
            return True
        return any(dep in needs and dep not in seen and fails(dep, (*seen, name)) for dep in needs.get(name, ()))

    predicted = {name: fails(name) for name in loader}
    actual = {name: error is not None for name, error in loader.items()}
    assert predicted == actual
    for name, error in loader.items():
        if error and name in broken and "undefined symbol: " in error:
            symbol = error.split("undefined symbol: ")[1].split(",")[0].strip()
            [finding] = [f for f in report.findings if f.check == "unresolved-symbols" and f.file.endswith(name)]
            assert symbol[:60] in finding.message or symbol[:60] in finding.evidence


def test_bitsandbytes_rocm_fat_binaries(bnb_wheel, tmp_path):
    report = run_audit([bnb_wheel], targets=parse_arch_list("gfx942,gfx950"))
    rocm = {f.path.split("!")[1]: f for f in report.files if "rocm" in f.path}
    assert rocm, [f.path for f in report.files]
    lib = rocm["bitsandbytes/libbitsandbytes_rocm72.so"]
    versions = {(b["compression"] or {}).get("version") for b in lib.fatbin["bundles"]}
    assert versions <= {2, 3} and None not in versions
    assert {"gfx90a", "gfx942", "gfx950"} <= set(lib.fatbin["targets"])
    assert all(c.kernels for c in lib.code_objects)
    coverage = [f for f in report.findings if f.check == "arch-coverage" and "rocm72" in f.file]
    assert coverage == []
    old = [f for f in report.findings if f.check == "arch-coverage" and f.file.endswith("rocm64.so")]
    assert [f.message.split(":")[0] for f in old] == ["library lacks gfx950"]  # ROCm 6.4 build has no gfx950

    # cross-check the first bundle's entry ids with clang-offload-bundler-19, which decompresses CCOB itself
    # (LLVM 19 knows CCOB v1/v2 only: use the ROCm 7.0 build, whose bundles are v2)
    need_tool("objcopy", "clang-offload-bundler-19")
    lib = rocm["bitsandbytes/libbitsandbytes_rocm70.so"]
    assert {b["compression"]["version"] for b in lib.fatbin["bundles"]} == {2}
    with zipfile.ZipFile(bnb_wheel) as archive:
        so = tmp_path / "rocm70.so"
        so.write_bytes(archive.read("bitsandbytes/libbitsandbytes_rocm70.so"))
    fat = tmp_path / "fat.bin"
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(so), str(fat)])
    first = lib.fatbin["bundles"][0]
    head = tmp_path / "first.bin"
    head.write_bytes(fat.read_bytes()[first["offset"]:first["offset"] + first["size"]])
    ids = run(["clang-offload-bundler-19", "--list", "--type=o", f"--input={head}"]).split()
    assert sorted(ids) == sorted(e["id"] for e in first["entries"])
