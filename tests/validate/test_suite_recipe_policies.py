"""The suite applies the recipe fields of issue 9: artifacts.distribution, validation.env,
pytest_gpu, benchmark (+ perf floors) and python_checks.

Everything runs for real (pytest, benchmark commands and snippets in subprocesses, real
distribution metadata); only the GPU-detection boundary is faked, by handing the suite a
``GpuInfo`` that claims a device.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from rocstack.recipes import Catalog
from rocstack.recipes.models import Artifacts, ValidationPolicy
from rocstack_validation import python_checks
from rocstack_validation.gpu import GpuInfo
from rocstack_validation.installed import distribution
from rocstack_validation.suite import _correctness, _performance, _python

NO_GPU = GpuInfo(False, reason="host has no /dev/kfd")
MI300X = GpuInfo(True, "amd", "AMD Instinct MI300X", "gfx942", "gfx942:sramecc+:xnack-", 1)


def _component(name="c", version=None, distribution=None, **policy):
    recipe = SimpleNamespace(source=None, artifacts=Artifacts(distribution=distribution))
    return SimpleNamespace(name=name, version=version, recipe=recipe, policy=ValidationPolicy(**policy))


def _context(root: Path | None, *components):
    return SimpleNamespace(mode="image", project_root=root, components=list(components), arches=["gfx942"],
                           stack=None, stack_name="t", torch_variant=None, expected_torch_version=None)


def _statuses(checks) -> dict[str, str]:
    return {c.name: c.status for c in checks}


# --- artifacts.distribution -------------------------------------------------------


def _installed_dist(tmp_path: Path, name="valtest_flash_attn", version="2.8.3.post2") -> Path:
    """A real installed distribution (dist-info + package) under tmp_path, named unlike its component."""
    site = tmp_path / "site"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("VALUE = 1\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n")
    return site


def test_declared_distribution_is_found_and_its_version_compared(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_installed_dist(tmp_path)))
    same = _component("flash-attention-ck", "2.8.3.post2", distribution="valtest_flash_attn")
    assert distribution(same).metadata["Name"] == "valtest_flash_attn"
    # pip's name normalisation: a recipe may spell it like fbgemm-gpu-rocm6's "fbgemm_gpu-rocm"
    assert distribution(_component("x", distribution="Valtest-Flash.Attn")).metadata["Name"] == "valtest_flash_attn"
    outcome = python_checks.check_version(same)
    assert outcome.status == "pass" and "valtest_flash_attn 2.8.3.post2 matches" in outcome.evidence
    other = _component("flash-attention-ck", "2.8.4", distribution="valtest_flash_attn")
    outcome = python_checks.check_version(other)
    assert outcome.status == "fail" and "records 2.8.4" in outcome.evidence


def test_missing_declared_distribution_fails_and_is_not_guessed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_installed_dist(tmp_path)))
    # the component's own name is installed, but the recipe says its wheel installs something else
    component = _component("valtest_flash_attn", "2.8.3.post2", distribution="valtest_not_installed")
    assert distribution(component) is None
    outcome = python_checks.check_version(component)
    assert outcome.status == "fail" and "valtest_not_installed" in outcome.evidence and "not installed" in outcome.evidence
    assert python_checks.check_imports(component).status == "fail"


def test_imports_come_from_the_declared_distribution_and_run_with_the_policy_env(tmp_path, monkeypatch):
    site = _installed_dist(tmp_path)
    monkeypatch.syspath_prepend(str(site))  # metadata lookup here; the import subprocess sees it only through env
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with_env = _component("flash-attention-ck", distribution="valtest_flash_attn", env={"PYTHONPATH": str(site)})
    outcome = python_checks.check_imports(with_env)
    assert outcome.status == "pass" and "valtest_flash_attn" in outcome.evidence
    without_env = _component("flash-attention-ck", distribution="valtest_flash_attn")
    outcome = python_checks.check_imports(without_env)
    assert outcome.status == "fail" and "No module named 'valtest_flash_attn'" in outcome.evidence


# --- validation.pytest_gpu and validation.env ----------------------------------------


def _upstream_tests(tmp_path: Path) -> Path:
    tests = tmp_path / "upstream-tests" / "fbgemm-gpu"
    tests.mkdir(parents=True)
    (tests / "forward_test.py").write_text(
        "import os, pathlib\n"
        "def test_rocm_path():\n"
        f"    pathlib.Path({str(tmp_path / 'ran')!r}).write_text('ran')\n"
        "    assert os.environ.get('FBGEMM_TEST_WITH_ROCM') == '1', 'ROCm path not selected'\n"
        "    assert 'TRITON_INTERPRET' not in os.environ\n")
    return tests / "forward_test.py"


def test_pytest_gpu_without_a_gpu_is_skipped_with_the_reason_and_not_run(tmp_path):
    test_file = _upstream_tests(tmp_path)
    component = _component("fbgemm-gpu-rocm", pytest_gpu=[f"-v -rsx {test_file}"], env={"FBGEMM_TEST_WITH_ROCM": "1"})
    checks = _correctness(_context(tmp_path, component), NO_GPU)
    assert _statuses(checks) == {"pytest:fbgemm-gpu-rocm[gpu-upstream]": "skip"}
    assert "host has no /dev/kfd" in checks[0].evidence and "not run" in checks[0].evidence
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("env, status", [({"FBGEMM_TEST_WITH_ROCM": "1"}, "pass"), ({}, "fail")])
def test_pytest_gpu_runs_on_a_gpu_with_the_policy_env(tmp_path, monkeypatch, env, status):
    monkeypatch.delenv("FBGEMM_TEST_WITH_ROCM", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # a GPU run must never inherit interpreter mode
    test_file = _upstream_tests(tmp_path)
    component = _component("fbgemm-gpu-rocm", pytest_gpu=[f"-W ignore::DeprecationWarning {test_file}"], env=env)
    checks = _correctness(_context(tmp_path, component), MI300X)
    assert _statuses(checks) == {"pytest:fbgemm-gpu-rocm[gpu-upstream]": status}
    assert (tmp_path / "ran").exists()
    if status == "fail":
        assert "ROCm path not selected" in checks[0].evidence


def test_pytest_gpu_missing_from_the_image_is_an_error_even_without_a_gpu(tmp_path):
    component = _component("xformers", pytest_gpu=[f'{tmp_path}/missing/test_mem_eff_attention.py -k "ckF"'])
    checks = _correctness(_context(tmp_path, component), NO_GPU)
    assert _statuses(checks) == {"pytest:xformers[gpu-upstream]": "error"}
    assert "not in the image" in checks[0].evidence and "test_mem_eff_attention.py" in checks[0].evidence


def test_pytest_gpu_naming_tests_the_image_lacks_is_an_error(tmp_path):
    component = _component("xformers", pytest_gpu=[f'{tmp_path}/missing/test_mem_eff_attention.py -k "ckF"',
                                                   f"{_upstream_tests(tmp_path)}"])
    checks = _correctness(_context(tmp_path, component), MI300X)
    assert _statuses(checks) == {"pytest:xformers#1[gpu-upstream]": "error", "pytest:xformers#2[gpu-upstream]": "fail"}
    assert "not in the image" in checks[0].evidence


def test_recipe_pytest_selections_get_the_policy_env_too(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_env.py").write_text(
        "import os\ndef test_env():\n    assert os.environ.get('FLASH_ATTENTION_TRITON_AMD_ENABLE') == 'TRUE'\n")
    component = _component("flash-attention-triton", pytest=["t"], env={"FLASH_ATTENTION_TRITON_AMD_ENABLE": "TRUE"})
    checks = _correctness(_context(tmp_path, component), NO_GPU)
    assert _statuses(checks) == {"pytest:flash-attention-triton[interpreter]": "pass",
                                 "pytest:flash-attention-triton[gpu]": "skip"}


# --- validation.benchmark + perf floors ------------------------------------------------

BENCH = (
    "import json, os, sys\n"
    "out = sys.argv[sys.argv.index('--json') + 1]\n"
    "tflops = float(os.environ['VALTEST_TFLOPS'])\n"
    "json.dump({'schema': 'rocstack.flash-attention-bench/v1', 'metrics': {\n"
    "    'flash_attn_fwd_bf16_hd128_tflops': tflops, 'sdpa_fwd_bf16_hd128_tflops': 100.0}}, open(out, 'w'))\n"
)


def _bench_component(tmp_path: Path, tflops: str | None, script: str = BENCH, **extra):
    (tmp_path / "recipes" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (tmp_path / "recipes" / "benchmarks" / "fa.py").write_text(script)
    env = {"VALTEST_TFLOPS": tflops} if tflops else {}
    return _component("flash-attention-ck", benchmark="{python} {root}/recipes/benchmarks/fa.py --json {json}", env=env,
                      perf={"gfx942": {"flash_attn_fwd_bf16_hd128_tflops": 250.0, "sdpa_fwd_bf16_hd128_tflops": 150.0},
                            "gfx90a": {"flash_attn_fwd_bf16_hd128_tflops": 60.0}}, **extra)


def test_component_benchmark_metrics_are_judged_against_the_floors_of_the_gpu_arch(tmp_path):
    checks, bench = _performance(_context(tmp_path, _bench_component(tmp_path, "300")), MI300X)
    assert _statuses(checks) == {
        "benchmark:flash-attention-ck": "pass",
        "perf:flash-attention-ck:flash_attn_fwd_bf16_hd128_tflops@gfx942": "pass",
        "perf:flash-attention-ck:sdpa_fwd_bf16_hd128_tflops@gfx942": "fail",
        "perf:flash-attention-ck:flash_attn_fwd_bf16_hd128_tflops@gfx90a": "skip",
    }
    floor = next(c for c in checks if c.name.endswith("flash_attn_fwd_bf16_hd128_tflops@gfx942"))
    assert floor.details == {"metric": "flash_attn_fwd_bf16_hd128_tflops", "value": 300.0, "floor": 250.0, "arch": "gfx942"}
    assert bench["components"]["flash-attention-ck"]["metrics"]["flash_attn_fwd_bf16_hd128_tflops"] == 300.0
    assert "results" not in bench  # no kernel-harness floors, so the harness did not run


def test_component_benchmark_below_its_floor_fails(tmp_path):
    checks, _ = _performance(_context(tmp_path, _bench_component(tmp_path, "120.5")), MI300X)
    floor = next(c for c in checks if c.name.endswith("flash_attn_fwd_bf16_hd128_tflops@gfx942"))
    assert floor.status == "fail" and "120.5 < floor 250" in floor.evidence


def test_component_benchmark_without_a_gpu_is_skipped_with_the_reason(tmp_path):
    checks, bench = _performance(_context(tmp_path, _bench_component(tmp_path, "300")), NO_GPU)
    assert bench is None and set(_statuses(checks).values()) == {"skip"}
    assert "benchmark:flash-attention-ck" in _statuses(checks)
    assert all("host has no /dev/kfd" in c.evidence for c in checks)


@pytest.mark.parametrize("script, cause", [
    ("import json, sys\njson.dump({'rows': []}, open(sys.argv[-1], 'w'))\n", "no 'metrics' object"),
    ("import sys\nsys.exit('no GPU kernel image for gfx942')\n", "no GPU kernel image for gfx942"),
    ("pass\n", "wrote no JSON"),
])
def test_a_broken_component_benchmark_is_an_error_on_each_floor(tmp_path, script, cause):
    checks, bench = _performance(_context(tmp_path, _bench_component(tmp_path, None, script)), MI300X)
    statuses = _statuses(checks)
    assert statuses["benchmark:flash-attention-ck"] == "error" and bench is None
    mine = [c for c in checks if c.name.endswith("@gfx942")]
    assert mine and all(c.status == "error" and cause in c.evidence for c in mine)


def test_component_benchmark_and_kernel_harness_run_side_by_side(tmp_path, monkeypatch):
    from rocstack_validation import perf_checks

    harness = tmp_path / "harness.py"
    harness.write_text(
        "import json, sys\n"
        "rows = [{'kernel': 'rms_norm', 'case': '32768x4096 bf16', 'impl': 'rocstack', 'rate': 2500.0, 'unit': 'GB/s'}]\n"
        "json.dump({'schema': 'rocstack.kernels-bench/v1', 'results': rows}, open(sys.argv[2], 'w'))\n")
    monkeypatch.setenv(perf_checks.BENCH_ENV, f"{{python}} {harness} {{kernels}} {{json}}")
    kernels = _component("rocstack-kernels", perf={"gfx942": {"rms_norm_gbps": 2000.0}})
    checks, bench = _performance(_context(tmp_path, kernels, _bench_component(tmp_path, "300")), MI300X)
    statuses = _statuses(checks)
    assert statuses["benchmarks"] == "pass" and statuses["perf:rocstack-kernels:rms_norm_gbps@gfx942"] == "pass"
    assert statuses["perf:flash-attention-ck:flash_attn_fwd_bf16_hd128_tflops@gfx942"] == "pass"
    assert bench["metrics"]["rms_norm_gbps"] == 2500.0 and "flash-attention-ck" in bench["components"]


# --- validation.python_checks ------------------------------------------------------------


def _declared(name, code, gpu=False):
    return {"name": name, "code": code, "gpu": gpu}


def test_declared_python_checks_pass_fail_and_gpu_skip(tmp_path):
    component = _component("xformers", env={"VALTEST_OP": "ckF"}, python_checks=[
        _declared("op-registered", "import os\nprint('memory_efficient_attention.' + os.environ['VALTEST_OP'] + ': available')"),
        _declared("op-missing", "assert False, 'memory_efficient_attention.ckB unavailable'"),
        _declared("forward", "print('forward ok')", gpu=True),
    ])
    checks = {c.name: c for c in _python(_context(tmp_path, component), NO_GPU)}
    assert checks["python:xformers:op-registered"].status == "pass"
    assert "memory_efficient_attention.ckF: available" in checks["python:xformers:op-registered"].evidence
    assert checks["python:xformers:op-missing"].status == "fail"
    assert "AssertionError: memory_efficient_attention.ckB unavailable" in checks["python:xformers:op-missing"].evidence
    assert checks["python:xformers:forward"].status == "skip"
    assert "host has no /dev/kfd" in checks["python:xformers:forward"].evidence
    on_gpu = {c.name: c.status for c in _python(_context(tmp_path, component), MI300X)}
    assert on_gpu["python:xformers:forward"] == "pass"


def test_policy_rejects_repeated_python_check_names():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="repeated: a"):
        ValidationPolicy(python_checks=[_declared("a", "pass"), _declared("a", "pass")])


# The xformers recipe's availability snippet, run against a package that keeps upstream's
# contract (xformers/ops/common.py: get_operator() hands back a function named
# "no_such_operator" when torch.ops.xformers lacks the op; BaseOperator.is_available()
# tests for it), so both outcomes of the real snippet are exercised without xFormers here.
UPSTREAM_CONTRACT = """
def get_operator(name, registered):
    def no_such_operator(*args, **kwargs):
        raise RuntimeError("No such operator xformers::" + name)
    if registered:
        def op(*args, **kwargs):
            return None
        op.__name__ = name
        return op
    return no_such_operator

class BaseOperator:
    @classmethod
    def is_available(cls):
        return not (cls.OPERATOR is None or cls.OPERATOR.__name__ == "no_such_operator")

class FwOp(BaseOperator):
    NAME = "ckF"
    OPERATOR = get_operator("efficient_attention_forward_ck", {registered})

class BwOp(BaseOperator):
    NAME = "ckB"
    OPERATOR = get_operator("efficient_attention_backward_ck", {registered})
"""


@pytest.mark.parametrize("registered", [True, False])
def test_xformers_recipe_availability_check(tmp_path, monkeypatch, registered):
    fmha = tmp_path / "xformers" / "ops" / "fmha"
    fmha.mkdir(parents=True)
    for package in (tmp_path / "xformers", tmp_path / "xformers" / "ops", fmha):
        (package / "__init__.py").write_text("")
    (fmha / "ck.py").write_text(UPSTREAM_CONTRACT.replace("{registered}", str(registered)))
    recipe = Catalog.default().component("xformers")
    declared = {c.name: c for c in recipe.validation.python_checks}
    assert declared["ck-forward"].gpu and not declared["ck-attention-registered"].gpu
    component = _component("xformers", env={"PYTHONPATH": str(tmp_path)})
    from rocstack_validation.recipe_checks import check_declared

    outcome = check_declared(component, declared["ck-attention-registered"], NO_GPU)
    if registered:
        assert outcome.status == "pass" and "ckF, ckB: available" in outcome.evidence
    else:
        assert outcome.status == "fail"
        assert "memory_efficient_attention ckF, ckB unavailable" in outcome.evidence and "HIP_ARCHITECTURES" in outcome.evidence
    assert check_declared(component, declared["ck-forward"], NO_GPU).status == "skip"


def test_no_check_passes_for_a_gpu_it_did_not_have(tmp_path):
    """Every GPU-only piece of the recipes' policies is a skip without a GPU, never a pass."""
    component = _bench_component(tmp_path, "300", pytest_gpu=[str(_upstream_tests(tmp_path))],
                                 python_checks=[_declared("fwd", "pass", gpu=True)])
    context = _context(tmp_path, component)
    perf, _ = _performance(context, NO_GPU)
    checks = perf + _correctness(context, NO_GPU) + [c for c in _python(context, NO_GPU) if c.name.startswith("python:")]
    assert len(checks) == 6 and {c.status for c in checks} == {"skip"}


# --- the same paths on a real GPU (the lent device), with real GPU detection -------------

GPU_TEST = """
import os
import torch

def test_matmul_on_the_gpu():
    assert os.environ.get("VALTEST_POLICY_ENV") == "1", "policy env missing"
    a = torch.randn(512, 512, device="cuda")
    assert torch.allclose(a @ torch.eye(512, device="cuda"), a, atol=1e-5)
"""

SDPA_BENCH = """
import json, sys, torch
import torch.nn.functional as F
q, k, v = (torch.randn(4, 16, 4096, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
for _ in range(3):
    F.scaled_dot_product_attention(q, k, v)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(10):
    F.scaled_dot_product_attention(q, k, v)
end.record()
torch.cuda.synchronize()
seconds = start.elapsed_time(end) / 10 / 1e3
tflops = 4 * 4 * 16 * 4096 * 4096 * 128 / seconds / 1e12
json.dump({"device": torch.cuda.get_device_name(0), "metrics": {"sdpa_fwd_bf16_hd128_tflops": tflops}},
          open(sys.argv[sys.argv.index("--json") + 1], "w"))
"""

SDPA_VS_NAIVE = """
import torch
import torch.nn.functional as F
q, k, v = (torch.randn(2, 8, 256, 64, device="cuda", dtype=torch.float16) for _ in range(3))
ref = torch.softmax(q.float() @ k.float().transpose(-1, -2) * 64 ** -0.5, -1) @ v.float()
err = (F.scaled_dot_product_attention(q, k, v).float() - ref).abs().max().item()
assert err < 2e-2, f"attention differs from the reference by {err:.3g}"
print(f"attention matches the reference on the GPU (max abs error {err:.2g})")
"""


@pytest.mark.gpu
def test_gpu_only_policy_parts_run_on_a_real_gpu(tmp_path):
    from rocstack_validation import gpu as gpu_mod

    gpu = gpu_mod.detect()
    if not gpu.available:
        pytest.skip(f"no GPU here: {gpu.reason}")
    (tmp_path / "upstream").mkdir()
    (tmp_path / "upstream" / "test_gpu.py").write_text(GPU_TEST)
    (tmp_path / "bench.py").write_text(SDPA_BENCH)
    floor_arch = gpu.arch if gpu.vendor == "amd" else "gfx942"  # floors are per gfx arch; NVIDIA gets the skip
    component = _component("gpu-probe", env={"VALTEST_POLICY_ENV": "1"},
                           pytest_gpu=[f"{tmp_path}/upstream/test_gpu.py"],
                           benchmark="{python} {root}/bench.py --json {json}",
                           perf={floor_arch: {"sdpa_fwd_bf16_hd128_tflops": 1.0}},
                           python_checks=[_declared("sdpa-vs-naive", SDPA_VS_NAIVE, gpu=True)])
    context = _context(tmp_path, component)
    perf, bench = _performance(context, gpu)
    checks = {c.name: c for c in _python(context, gpu) + _correctness(context, gpu) + perf}
    for name in ("python:gpu-probe:sdpa-vs-naive", "pytest:gpu-probe[gpu-upstream]", "benchmark:gpu-probe"):
        assert checks[name].status == "pass", checks[name]
    floor = checks[f"perf:gpu-probe:sdpa_fwd_bf16_hd128_tflops@{floor_arch}"]
    if gpu.vendor == "amd":
        assert floor.status == "pass", floor
    else:
        assert floor.status == "skip" and f"floor is for gfx942 but the GPU is {gpu.name}" in floor.evidence
    measured = bench["components"]["gpu-probe"]["metrics"]["sdpa_fwd_bf16_hd128_tflops"]
    print(f"{gpu.name} ({gpu.arch}): {checks['python:gpu-probe:sdpa-vs-naive'].evidence}; "
          f"SDPA bf16 hd128 S4096 forward {measured:.1f} TFLOP/s; {checks['pytest:gpu-probe[gpu-upstream]'].evidence}")
