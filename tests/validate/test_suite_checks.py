"""The in-image suite's checks, run here on the host (real pytest, real CPU torch, real recipe models)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from rocstack.arches import parse_arch_list

import pytest

from rocstack.recipes.models import Stack, ValidationPolicy
from rocstack_validation import perf_checks, pytest_checks, python_checks
from rocstack_validation.gpu import GpuInfo
from rocstack_validation.results import Outcome, run_check
from rocstack_validation.suite import _performance


def _stack(variant: str) -> Stack:
    base = {"debootstrap": {"suite": "bookworm"}} if variant == "cpu" else {"image": "rocm/dev-ubuntu-22.04:6.4"}
    torch = {"version": "2.13.0", "variant": variant, **({"wheelhouse": True} if variant == "cpu" else {"index_url": "https://x/rocm6.4"})}
    return Stack.model_validate({"name": f"t-{variant}", "base": base, "os": {"name": "debian", "version": "12"},
                                 "rocm": None if variant == "cpu" else "6.4", "python": "3.11", "torch": torch,
                                 "components": ["c"]})


def _context(variant="cpu", arches=("gfx942",), components=()):
    targets = parse_arch_list(list(arches))  # the suite's context holds parsed target IDs
    return SimpleNamespace(mode="image", stack=_stack(variant), stack_name=f"t-{variant}", arches=targets,
                           arch_names=[str(t) for t in targets], components=list(components),
                           torch_variant=variant, expected_torch_version="2.13.0")


def _component(name="c", perf=None, pytest=None):
    policy = ValidationPolicy(perf=perf or {}, pytest=pytest or [])
    return SimpleNamespace(name=name, policy=policy, recipe=None, version=None)


def test_cpu_torch_is_what_the_local_stack_expects():
    pytest.importorskip("torch")
    outcome = python_checks.check_torch_variant(_context("cpu"))
    assert outcome.status == "pass" and "CPU torch" in outcome.evidence


def test_cpu_torch_in_a_rocm_stack_is_the_cpu_only_torch_failure():
    pytest.importorskip("torch")
    outcome = python_checks.check_torch_variant(_context("rocm"))
    assert outcome.status == "fail"
    assert "CPU-only" in outcome.evidence and "torch.version.hip=None" in outcome.evidence and "--index-url" in outcome.evidence


@pytest.mark.parametrize("device, status", [("gfx942:sramecc+:xnack-", "pass"), ("gfx90a:sramecc+:xnack-", "fail")])
def test_gpu_arch_must_be_covered_by_the_image(device, status):
    gpu = GpuInfo(True, "amd", "AMD Instinct", device.split(":")[0], device, 1)
    outcome = python_checks.check_gpu_arch(_context(arches=("gfx942",)), gpu)
    assert outcome.status == status
    if status == "fail":
        assert "hipErrorNoBinaryForGpu" in outcome.evidence and "--arch gfx90a" in outcome.evidence


def test_gpu_checks_without_a_gpu_are_skips_with_the_reason():
    gpu = GpuInfo(False, reason="host has no /dev/kfd")
    assert python_checks.check_gpu_arch(_context(), gpu).status == "skip"
    checks, bench = _performance(_context(components=[_component(perf={"gfx942": {"rms_norm_gbps": 3000}})]), gpu)
    assert bench is None and [(c.name, c.status) for c in checks] == [("perf:c:rms_norm_gbps@gfx942", "skip")]
    assert "host has no /dev/kfd" in checks[0].evidence


def test_perf_floor_for_another_arch_is_skipped_not_passed():
    gpu = GpuInfo(True, "nvidia", "H100", "sm90", None, 1)
    checks, _ = _performance(_context(components=[_component(perf={"gfx942": {"rms_norm_gbps": 3000}})]), gpu)
    assert [c.status for c in checks] == ["skip"] and "gfx942" in checks[0].evidence


@pytest.mark.parametrize("value, status", [(3100.0, "pass"), (2500.0, "fail")])
def test_perf_floor_judgement(value, status):
    outcome = perf_checks.judge_floor("rms_norm_gbps", 3000.0, {"rms_norm_gbps": value}, "gfx942")
    assert outcome.status == status and outcome.details["floor"] == 3000.0


def test_perf_metric_the_harness_did_not_report_is_an_error():
    assert perf_checks.judge_floor("rope_gbps", 1.0, {"rms_norm_gbps": 1.0}, "gfx942").status == "error"


@pytest.mark.parametrize("expected, installed, same", [
    ("2.13.0", "2.13.0+cpu", True), ("2.13.0+rocm6.4", "2.13.0+cpu", False), ("1.0.0", "1.0.1", False), ("1.0", "1.0.0", True),
])
def test_version_comparison(expected, installed, same):
    assert python_checks._same_version(expected, installed)[0] is same


def _tests(tmp_path: Path, body: str) -> Path:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_x.py").write_text(body)
    return tmp_path


def test_real_pytest_run_passes_and_reports_skip_reasons(tmp_path):
    root = _tests(tmp_path, "import pytest\ndef test_a():\n    assert True\n"
                            "@pytest.mark.skip(reason='needs a GPU')\ndef test_b():\n    pass\n")
    outcome = pytest_checks.pytest_outcome("t", root, interpreter=True)
    assert outcome.status == "pass" and "1 passed, 1 skipped (1x needs a GPU)" in outcome.evidence


def test_real_pytest_failure_names_the_test_and_message(tmp_path):
    root = _tests(tmp_path, "def test_bad():\n    assert 1 == 2, 'rms_norm mismatch'\n")
    outcome = pytest_checks.pytest_outcome("t", root, interpreter=True)
    assert outcome.status == "fail" and "test_bad" in outcome.evidence and "rms_norm mismatch" in outcome.evidence


def test_all_skipped_is_a_skip_and_an_empty_selection_an_error(tmp_path):
    root = _tests(tmp_path, "import pytest\n@pytest.mark.skip(reason='gpu only')\ndef test_b():\n    pass\n")
    assert pytest_checks.pytest_outcome("t", root, interpreter=True).status == "skip"
    assert pytest_checks.pytest_outcome("t -k nothing_matches", root, interpreter=True).status == "error"
    missing = pytest_checks.pytest_outcome("kernels/tests", root, interpreter=True)
    assert missing.status == "error" and "not in the image" in missing.evidence


def test_interpreter_mode_sets_triton_interpret(tmp_path):
    root = _tests(tmp_path, "import os\ndef test_env():\n    assert os.environ.get('TRITON_INTERPRET') == '1'\n")
    assert pytest_checks.pytest_outcome("t", root, interpreter=True).status == "pass"
    assert pytest_checks.pytest_outcome("t", root, interpreter=False).status == "fail"


def test_a_crashing_check_is_an_error_not_a_crash():
    def body() -> Outcome:
        raise KeyError("boom")

    result = run_check("x", "python", body)
    assert result.status == "error" and "KeyError" in result.evidence and "test_suite_checks.py" in result.evidence


def test_metrics_from_real_bench_rows_take_the_worst_case():
    rows = [{"kernel": "rms_norm", "case": "32768x4096 bf16", "impl": "rocstack", "rate": 2900.0, "unit": "GB/s",
             "pct_of_ceiling": 96.0, "ratio_to_best_peer": 1.4},
            {"kernel": "rms_norm", "case": "32768x65536 bf16", "impl": "rocstack", "rate": 2300.0, "unit": "GB/s",
             "pct_of_ceiling": 76.0, "ratio_to_best_peer": 1.1},
            {"kernel": "rms_norm", "case": "32768x4096 bf16", "impl": "torch.compile", "rate": 2000.0, "unit": "GB/s"},
            {"kernel": "fp8_gemm", "case": "8192x8192x8192", "impl": "rocstack", "error": "no FP8 here"}]
    metrics = perf_checks.metrics_from_results(rows)
    assert metrics["rms_norm_gbps"] == 2300.0 and metrics["rms_norm_pct_of_ceiling"] == 76.0
    assert metrics["rms_norm_vs_best_peer"] == 1.1 and metrics["rms_norm[32768x4096 bf16]_gbps"] == 2900.0
    assert not any(k.startswith("fp8_gemm") for k in metrics)


def test_only_the_kernels_named_by_floors_are_benchmarked():
    assert perf_checks.kernels_of(["rms_norm_gbps", "rms_norm[32768x4096 bf16]_pct_of_ceiling",
                                   "flash_attention_vs_best_peer"]) == ["rms_norm", "flash_attention"]


def test_perf_pipeline_runs_the_harness_and_judges_each_floor(tmp_path, monkeypatch):
    """The harness is replaced at its command-line boundary (no GPU here); parsing and judging are real."""
    harness = tmp_path / "harness.py"
    harness.write_text(
        "import json, sys\n"
        "rows = [{'kernel': 'rms_norm', 'case': '32768x4096 bf16', 'impl': 'rocstack', 'rate': 2500.0,\n"
        "         'unit': 'GB/s', 'pct_of_ceiling': 83.0}]\n"
        "json.dump({'schema': 'rocstack.kernels-bench/v1', 'results': rows}, open(sys.argv[2], 'w'))\n")
    monkeypatch.setenv(perf_checks.BENCH_ENV, f"{{python}} {harness} {{kernels}} {{json}}")
    component = _component(perf={"gfx942": {"rms_norm_gbps": 2000.0, "rms_norm_pct_of_ceiling": 85.0}})
    gpu = GpuInfo(True, "amd", "AMD Instinct MI300X", "gfx942", "gfx942:sramecc+:xnack-", 1)
    checks, bench = _performance(_context(components=[component]), gpu)
    statuses = {c.name: c.status for c in checks}
    assert statuses == {"benchmarks": "pass", "perf:c:rms_norm_gbps@gfx942": "pass",
                        "perf:c:rms_norm_pct_of_ceiling@gfx942": "fail"}
    assert bench["metrics"]["rms_norm_gbps"] == 2500.0


def test_suite_refuses_a_manifest_it_cannot_use(tmp_path):
    from rocstack_validation.__main__ import main

    bad = tmp_path / "manifest.json"
    bad.write_text('{"schema": "rocstack.build-manifest/v1", "stack": "local", "arches": ["gfx942"], "components": [{}]}')
    assert main(["--manifest", str(bad), "--out", str(tmp_path / "out.json")]) == 2
    assert main(["--manifest", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out.json")]) == 2
    assert not (tmp_path / "out.json").exists()


def _aot_build(tmp_path, entries, targets=("gfx942",), triton=None):
    import hashlib
    import json

    from rocstack_validation.aot_checks import installed_triton

    for entry in entries:
        if entry.get("status") == "built":
            path = tmp_path / entry["code_object"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x7fELF code object " + entry["kernel"].encode())
            entry.setdefault("sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": "rocstack.kernels-build/v1", "targets": list(targets),
                                    "triton_version": triton or installed_triton(), "entries": entries}))
    return manifest


def _entry(kernel, status="built", target="gfx942", **extra):
    return {"kernel": kernel, "label": "bf16", "target": target, "status": status,
            "code_object": f"triton-cache/{kernel}-{target}.hsaco", **extra}


def test_aot_build_complete_for_the_image_arches_passes(tmp_path):
    from rocstack_validation.aot_checks import check_aot

    manifest = _aot_build(tmp_path, [_entry("rms_norm"), _entry("fp8_gemm", "unsupported", reason="no FP8 on gfx90a")])
    outcome = check_aot(manifest, parse_arch_list("gfx942"))
    assert outcome.status == "pass" and "1 unsupported by design" in outcome.evidence and "no FP8" in outcome.evidence


def test_aot_build_failures_missing_arches_and_damage_fail(tmp_path):
    from rocstack_validation.aot_checks import check_aot

    manifest = _aot_build(tmp_path, [_entry("rms_norm"), _entry("rotary_embedding", "failed", error="PassManager::run failed")])
    (tmp_path / "triton-cache" / "rms_norm-gfx942.hsaco").write_bytes(b"changed")
    outcome = check_aot(manifest, parse_arch_list("gfx90a,gfx942"))
    assert outcome.status == "fail"
    for needle in ("no code for gfx90a", "rotary_embedding on gfx942", "PassManager::run failed", "does not match its recorded sha256"):
        assert needle in outcome.evidence


def test_aot_build_by_another_triton_fails(tmp_path):
    from rocstack_validation.aot_checks import check_aot, installed_triton

    if installed_triton() is None:
        pytest.skip("no triton installed here")
    outcome = check_aot(_aot_build(tmp_path, [_entry("rms_norm")], triton="0.0.1"), parse_arch_list("gfx942"))
    assert outcome.status == "fail" and "built by Triton 0.0.1" in outcome.evidence


def test_audit_judges_a_component_s_files_as_one_component(tmp_path, monkeypatch):
    """Per-arch code-object trees (as amd-aiter ships): kernels/gfx90a/k.co and kernels/gfx942/k.co are one
    kernel set of the component, covered for both arches. Judged as separate inputs, each file would be a
    component of its own that lacks the other arch."""
    import shutil
    import subprocess

    from rocstack_validation import audit_checks

    if shutil.which("clang-19") is None:
        pytest.skip("clang-19 is not installed (CI installs it): cannot compile the code objects")
    (tmp_path / "k.hip").write_text('extern "C" __attribute__((global)) void k(float* x) { x[0] = 1; }\n')
    files = []
    for arch in ("gfx90a", "gfx942"):
        out = tmp_path / "kit" / "kernels" / arch / "k.co"
        out.parent.mkdir(parents=True)
        subprocess.run(["clang-19", "-x", "hip", "-nogpulib", "-nogpuinc", f"--offload-arch={arch}", "--cuda-device-only",
                        "-c", "-o", str(out), str(tmp_path / "k.hip")], check=True, capture_output=True, timeout=300)
        files.append(out)
    monkeypatch.setattr(audit_checks, "native_files", lambda component, sysroot: files)  # what the dist-info lists
    targets = parse_arch_list("gfx90a,gfx942")
    context = SimpleNamespace(arches=targets, arch_names=[str(t) for t in targets], sysroot="/")
    outcome = audit_checks.check_audit(_component("kit"), context)
    assert outcome.status == "pass", outcome.evidence
    assert outcome.details["coverage"]["components"] == [{"name": "kit", "cells": {"gfx90a": "covered",
                                                                                    "gfx942": "covered"}}]
