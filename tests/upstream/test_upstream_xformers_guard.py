"""The xFormers guard on a real extension built the way xFormers' setup.py builds it.

xFormers' setup.py compiles its HIP/CK kernels into ``xformers/_C.so`` only when
``torch.version.hip and XFORMERS_CK_FLASH_ATTN == "1" and (torch.cuda.is_available() or
HIP_ARCHITECTURES)``; otherwise ``_C`` is a ``CppExtension`` of the C++ sources alone
(``py_limited_api=True``, ``BuildExtension.with_options(no_python_abi_suffix=True)``),
and the build succeeds silently. Here (CPU torch, no GPU, no HIP_ARCHITECTURES) the same
decision and the same torch.utils.cpp_extension build make that CPU-only ``_C.so`` for
real with g++; the xFormers recipe policy must fail it with the "no GPU code" finding.
A control build links in a real HIP fat binary (Debian's hipcc, gfx90a), so the check is
shown to tell the two apart, and to want every image arch. Then xFormers itself: its
PyPI sdist built with the recipe's environment on this CPU-only machine takes the same
silent CPU-only branch (~4 min on 2 cores, wheel cached); the policy and the recipe's own
build-step guard (cpp_lib.json must record a HIP version) both refuse it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import load_policy, run_audit
from rocstack.recipes.loader import recipe_audit_policy
from rocstack.recipes.catalog import Catalog

from pypi_cache import cache_dir, pypi_download

REPO = Path(__file__).resolve().parents[2]
XFORMERS_RECIPE = REPO / "recipes" / "components" / "xformers.yaml"

pytestmark = pytest.mark.slow  # compiles a torch C++ extension (~1 min on 2 cores)

OPS_CPP = """\
#include <ATen/ATen.h>
#include <torch/library.h>

// a CPU operator registered like xFormers' C++ sources register theirs
static at::Tensor scaled(const at::Tensor& x, double alpha) { return x * alpha; }

TORCH_LIBRARY_FRAGMENT(xformers, m) { m.def("rocstack_scaled(Tensor x, float alpha) -> Tensor"); }
TORCH_LIBRARY_IMPL(xformers, CPU, m) { m.impl("rocstack_scaled", scaled); }
"""

KERNEL_HIP = """\
#include <hip/hip_runtime.h>
__global__ void scale(float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= a;
}
extern "C" int rocstack_launch_scale(float* x, float a, int n) {
  hipLaunchKernelGGL(scale, dim3((n + 255) / 256), dim3(256), 0, 0, x, a, n);
  return 0;
}
"""

# xFormers' get_extensions() decision and extension, reduced to one source file; the
# HIP branch here only links a prebuilt object (this machine's torch is not a ROCm build).
SETUP_PY = """\
import os
import torch
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

build_hip = bool(
    torch.version.hip
    and os.getenv("XFORMERS_CK_FLASH_ATTN", "1") == "1"
    and (torch.cuda.is_available() or os.getenv("HIP_ARCHITECTURES", "") != "")
)
hip_object = os.getenv("ROCSTACK_TEST_HIP_OBJECT")  # the control build's real HIP code
extra = {"extra_objects": [hip_object], "libraries": ["amdhip64"]} if hip_object else {}
print("xformers-like build: HIP kernels", "compiled" if build_hip else "skipped", flush=True)
setup(
    name="xformers",
    version="0.0.0",
    packages=["xformers"],
    ext_modules=[CppExtension("xformers._C", ["ops.cpp"], py_limited_api=True,
                              extra_compile_args={"cxx": ["-O1", "-std=c++17"]}, **extra)],
    cmdclass={"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)},
)
"""


def build_extension(folder: Path, hip_object: Path | None = None) -> Path:
    """Build the xFormers-like wheel in ``folder``; returns the wheel."""
    (folder / "xformers").mkdir(parents=True)
    (folder / "xformers" / "__init__.py").write_text("")
    (folder / "ops.cpp").write_text(OPS_CPP)
    (folder / "setup.py").write_text(SETUP_PY)
    env = {k: v for k, v in os.environ.items() if k != "HIP_ARCHITECTURES"}  # as in a docker build that forgot it
    env["MAX_JOBS"] = "2"
    if hip_object:
        env["ROCSTACK_TEST_HIP_OBJECT"] = str(hip_object)
    # the recipe's build command: a wheel, built against the environment's torch
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "-w", str(folder / "dist"), "."],
                          cwd=folder, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert "HIP kernels skipped" in proc.stdout + proc.stderr  # xFormers' condition is false here, as in the bad docker build
    wheels = sorted((folder / "dist").glob("xformers-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        assert "xformers/_C.so" in archive.namelist()  # no Python ABI tag, as xFormers ships it
    return wheels[0]


@pytest.fixture(scope="module")
def cpu_only_extension(tmp_path_factory) -> Path:
    return build_extension(tmp_path_factory.mktemp("xformers-cpu-only"))


@pytest.fixture(scope="module")
def hip_extension(tmp_path_factory) -> Path:
    hipcc = shutil.which("hipcc")
    if hipcc is None:
        pytest.skip("hipcc is not installed (apt-get install hipcc libamdhip64-dev)")
    folder = tmp_path_factory.mktemp("xformers-hip")
    (folder / "kernel.hip").write_text(KERNEL_HIP)
    obj = folder / "kernel.o"
    proc = subprocess.run([hipcc, "-fPIC", "-c", "--offload-arch=gfx90a", "-o", str(obj), str(folder / "kernel.hip")],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "HIP_PLATFORM": "amd"})
    assert proc.returncode == 0, proc.stderr[-1500:]
    return build_extension(folder / "ext", hip_object=obj)


def audit(wheel: Path, arch: str):
    return run_audit([str(wheel)], targets=parse_arch_list(arch), policy=load_policy(str(XFORMERS_RECIPE), read_recipe=recipe_audit_policy))


def gpu_findings(report):
    return [f for f in report.findings if f.severity == "error" and f.check in ("gpu-extension", "arch-coverage")]


def test_cpu_only_xformers_extension_fails_with_the_no_gpu_code_finding(cpu_only_extension):
    report = audit(cpu_only_extension, "gfx942")
    assert report.exit_code == 1
    findings = gpu_findings(report)
    assert [f.check for f in findings] == ["gpu-extension"]
    assert findings[0].file.endswith("xformers/_C.so")
    assert "no .hip_fatbin section: it was built CPU-only" in findings[0].message
    assert "HIP_ARCHITECTURES" in findings[0].hint  # the fix users need


def test_cli_reports_the_same_failure(cpu_only_extension):
    proc = subprocess.run(["rocstack", "audit", str(cpu_only_extension), "--arch", "gfx942", "--policy", str(XFORMERS_RECIPE), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert any(f["check"] == "gpu-extension" and "built CPU-only" in f["message"] for f in findings)


def test_extension_with_hip_code_for_the_image_arch_passes_the_guard(hip_extension):
    report = audit(hip_extension, "gfx90a")
    assert gpu_findings(report) == [], [f.message for f in gpu_findings(report)]


def test_extension_with_hip_code_for_another_arch_is_still_refused(hip_extension):
    report = audit(hip_extension, "gfx90a,gfx942")
    findings = gpu_findings(report)
    assert findings and all(f.check == "arch-coverage" for f in findings)
    assert any("gfx942" in f.message for f in findings)


def test_policy_requires_the_extension_exactly_where_xformers_installs_it():
    policy = load_policy(str(XFORMERS_RECIPE), read_recipe=recipe_audit_policy)
    assert policy.gpu_extensions == ["xformers/_C.so"]
    assert "torch" in policy.preload
    assert textwrap.dedent(SETUP_PY).count("no_python_abi_suffix=True") == 1  # hence _C.so, no ABI tag


@pytest.fixture(scope="module")
def real_xformers_cpu_wheel(tmp_path_factory) -> Path:
    """xFormers' own sdist, built as the recipe builds it, on a machine where no GPU is visible (cached)."""
    import tarfile

    import torch

    recipe = Catalog(REPO).component("xformers")
    version = recipe.version
    cached = cache_dir() / "wheels" / f"xformers-{version}-torch{torch.__version__}-cpu-only.whl"
    if cached.exists():
        return cached
    sdist = pypi_download(f"xformers=={version}", f"xformers-{version}.tar.gz", binary=False)
    work = tmp_path_factory.mktemp("xformers-sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    env = {k: v for k, v in os.environ.items() if k != "HIP_ARCHITECTURES"}
    env.update({**recipe.build.env, "MAX_JOBS": "2"})
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-w", str(work / "dist"), "."],
                          cwd=work / f"xformers-{version}", env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    built = next((work / "dist").glob("xformers-*.whl"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    shutil.copyfile(built, partial)
    os.replace(partial, cached)
    return cached


def test_real_xformers_built_without_a_visible_gpu_is_cpu_only_and_refused(real_xformers_cpu_wheel):
    with zipfile.ZipFile(real_xformers_cpu_wheel) as archive:
        info = json.loads(archive.read("xformers/cpp_lib.json"))
        assert "xformers/_C.so" in archive.namelist()
    assert info["version"]["hip"] is None  # the silent branch: the build itself succeeded
    report = audit(real_xformers_cpu_wheel, "gfx942")
    findings = gpu_findings(report)
    assert report.exit_code == 1 and [f.check for f in findings] == ["gpu-extension"]
    assert "built CPU-only" in findings[0].message


def test_recipe_build_step_guard_stops_the_real_cpu_only_wheel(real_xformers_cpu_wheel, tmp_path):
    """The recipe's own check, run verbatim on the wheel, fails the build before an image exists."""
    recipe = Catalog(REPO).component("xformers")
    (guard,) = [c for c in recipe.build.commands if "cpp_lib.json" in c]
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    shutil.copyfile(real_xformers_cpu_wheel, wheel_dir / "xformers-0.0.0-cp39-abi3-linux_x86_64.whl")
    proc = subprocess.run(["sh", "-c", guard.replace("python -c", f"{sys.executable} -c", 1)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "WHEEL_DIR": str(wheel_dir)})
    assert proc.returncode != 0
    assert "xformers/_C.so was built without HIP kernels: set HIP_ARCHITECTURES" in proc.stderr
