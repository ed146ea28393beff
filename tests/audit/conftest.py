"""Real artifacts for the audit tests: libraries compiled with g++, HIP fat binaries, cached PyPI wheels.

Tools that are missing make the tests that need them skip with the reason; CI
installs them (g++, binutils, hipcc, clang-offload-bundler-19, llvm-19).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def need_tool(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed (CI installs it)")


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Builder:
    """Compiles small C/C++ shared libraries into one directory."""

    def __init__(self, root: Path):
        self.root = root

    def lib(self, name: str, source: str, *flags: str, lang: str = "c++", subdir: str = "") -> Path:
        need_tool("g++")
        folder = self.root / subdir if subdir else self.root
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / (name + (".cpp" if lang == "c++" else ".c"))
        src.write_text(source)
        out = folder / name
        compiler = "g++" if lang == "c++" else "gcc"
        run([compiler, "-shared", "-fPIC", "-O1", "-o", str(out), str(src), *flags], cwd=folder)
        return out


@pytest.fixture
def builder(tmp_path) -> Builder:
    return Builder(tmp_path)


@pytest.fixture(scope="session")
def test_cache() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def pip_download(cache: Path, requirement: str, folder: str) -> Path:
    """A wheel from PyPI, downloaded once into the test cache (``pip download --no-deps``)."""
    target = cache / folder
    wheels = sorted(target.glob("*.whl"))
    if not wheels:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
             f"{sys.version_info.major}.{sys.version_info.minor}", "-d", str(target), requirement],
            capture_output=True, text=True, timeout=900,
        )
        wheels = sorted(target.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {requirement} from PyPI: {done.stderr.strip().splitlines()[-1:]}")
    return wheels[-1]


@pytest.fixture(scope="session")
def hip_fatbin_lib(tmp_path_factory) -> Path:
    """A HIP shared library for gfx90a + gfx1030 built by Debian's hipcc (two kernels, one with 32 KiB LDS)."""
    need_tool("hipcc")
    folder = tmp_path_factory.mktemp("hip")
    (folder / "k.hip").write_text(
        "#include <hip/hip_runtime.h>\n"
        "__global__ void scale(float* x, float a, int n) {\n"
        "  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= a; }\n"
        "__global__ void big_lds(float* x) { __shared__ float buf[8192];\n"
        "  buf[threadIdx.x] = x[threadIdx.x]; __syncthreads(); x[threadIdx.x] = buf[(threadIdx.x + 1) % 8192]; }\n"
        'extern "C" int launch_scale(float* x, float a, int n) {\n'
        "  hipLaunchKernelGGL(scale, dim3((n + 255) / 256), dim3(256), 0, 0, x, a, n); return 0; }\n"
    )
    run(["hipcc", "--offload-arch=gfx90a", "--offload-arch=gfx1030", "-shared", "-fPIC", "-o", "libk.so", "k.hip"],
        cwd=folder, env={"HIP_PLATFORM": "amd"}, timeout=600)
    return folder / "libk.so"


@pytest.fixture(scope="session")
def hip_bundle_parts(hip_fatbin_lib, tmp_path_factory) -> dict:
    """The fat binary of ``hip_fatbin_lib`` as a file, and its code objects unbundled by clang-offload-bundler-19."""
    need_tool("objcopy", "clang-offload-bundler-19")
    folder = tmp_path_factory.mktemp("bundle")
    fat = folder / "fat.bin"
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(hip_fatbin_lib), str(fat)])
    ids = run(["clang-offload-bundler-19", "--list", "--type=o", f"--input={fat}"]).split()
    objects = {}
    for entry in ids:
        if entry.startswith("host-"):
            continue
        out = folder / (entry.rsplit("-", 1)[-1].replace(":", "_") + ".co")
        run(["clang-offload-bundler-19", "--unbundle", "--type=o", f"--input={fat}", f"--targets={entry}",
             f"--output={out}"])
        objects[entry] = out
    return {"fat": fat, "ids": ids, "objects": objects}
