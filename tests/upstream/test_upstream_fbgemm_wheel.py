"""FBGEMM_GPU's published cpu wheel (PyPI) through the audit engine with the recipe policies.

The cpu policy (upstream's required symbols for every variant, everything resolvable with
torch loaded first) must pass; the rocm policy must fail and name exactly the GPU-only
symbols the cpu variant lacks. A cpu wheel built for another torch must fail with the
unresolved torch symbols that make its import fail, and a real import agrees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import load_policy, run_audit
from rocstack.recipes.loader import recipe_audit_policy

REPO = Path(__file__).resolve().parents[2]
CPU_RECIPE = REPO / "recipes" / "components" / "fbgemm-gpu-cpu.yaml"
ROCM_RECIPE = REPO / "recipes" / "components" / "fbgemm-gpu-rocm.yaml"
GPU_ONLY = ("fbgemm_gpu::asynchronous_inclusive_cumsum_gpu", "fbgemm_gpu::merge_pooled_embeddings")
EVERY_VARIANT = ("fbgemm_gpu::asynchronous_inclusive_cumsum_cpu", "fbgemm_gpu::jagged_2d_to_dense")

pytestmark = pytest.mark.slow  # real PyPI downloads (cached) and real third-party binaries


def errors(report):
    return [f for f in report.findings if f.severity == "error"]


def test_cpu_wheel_passes_the_cpu_policy(fbgemm_cpu_wheel):
    report = run_audit([str(fbgemm_cpu_wheel)], policy=load_policy(str(CPU_RECIPE), read_recipe=recipe_audit_policy))
    assert report.exit_code == 0, [f.message for f in errors(report)]
    assert not errors(report)
    required = [f for f in report.findings if f.check == "required-symbols"]
    assert required and "all 2 required symbols are exported" in required[0].message
    # the whole family was audited: the split libraries found through $ORIGIN included
    audited = {Path(s.path.split("!")[-1]).name for s in report.files}
    assert {"fbgemm_gpu_py.so", "fbgemm_gpu_config.so", "fbgemm_gpu_tbe_training_forward.so"} <= audited


def test_cpu_wheel_fails_the_rocm_policy_naming_the_missing_gpu_symbols(fbgemm_cpu_wheel):
    report = run_audit([str(fbgemm_cpu_wheel)], targets=parse_arch_list("gfx942"), policy=load_policy(str(ROCM_RECIPE), read_recipe=recipe_audit_policy))
    assert report.exit_code == 1
    missing = [f for f in errors(report) if f.check == "required-symbols"]
    assert len(missing) == 1
    message = missing[0].message
    assert "2 of 4 required symbols are not exported" in message
    for name in GPU_ONLY:
        assert name in message
    for name in EVERY_VARIANT:  # the cpu variant does define these
        assert name not in message
    # and it has no device code where the rocm policy expects some
    assert any(f.check == "gpu-extension" and "built CPU-only" in f.message for f in errors(report))


def test_cli_audit_with_recipe_policies(fbgemm_cpu_wheel):
    def audit(recipe: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["rocstack", "audit", str(fbgemm_cpu_wheel), "--policy", str(recipe), "--json", *extra],
                              capture_output=True, text=True, timeout=600, cwd=REPO)

    ok = audit(CPU_RECIPE)
    assert ok.returncode == 0, ok.stderr
    bad = audit(ROCM_RECIPE, "--arch", "gfx942")
    assert bad.returncode == 1, bad.stderr
    document = json.loads(bad.stdout)
    text = json.dumps(document)
    assert all(name in text for name in GPU_ONLY)


def test_wheel_built_for_another_torch_is_caught_and_really_fails_to_import(fbgemm_cpu_wheel_for_torch_2_9, tmp_path):
    report = run_audit([str(fbgemm_cpu_wheel_for_torch_2_9)], policy=load_policy(str(CPU_RECIPE), read_recipe=recipe_audit_policy))
    unresolved = [f for f in errors(report) if f.check == "unresolved-symbols"]
    assert report.exit_code == 1 and unresolved
    assert any("torch::" in (f.evidence or "") or "c10::" in (f.evidence or "") for f in unresolved)
    # the verdict matches reality: under this torch the 1.4.0 wheel does not load
    proc = import_from_wheel(fbgemm_cpu_wheel_for_torch_2_9, tmp_path, "import torch, fbgemm_gpu")
    assert proc.returncode != 0
    assert "Could not load this library" in proc.stderr or "undefined symbol" in proc.stderr


def import_from_wheel(wheel: Path, tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` with the unpacked wheel first on the path, in a fresh interpreter."""
    target = tmp_path / wheel.stem
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(target)})


def test_cpu_wheel_really_imports_and_runs_a_required_operator(fbgemm_cpu_wheel, tmp_path):
    code = ("import torch, fbgemm_gpu; "
            "print(torch.ops.fbgemm.asynchronous_inclusive_cumsum(torch.tensor([1, 2, 3])).tolist())")
    proc = import_from_wheel(fbgemm_cpu_wheel, tmp_path, code)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert proc.stdout.strip().splitlines()[-1] == "[1, 3, 6]"
