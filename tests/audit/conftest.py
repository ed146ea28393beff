"""Real artifacts for the audit tests: libraries compiled with g++, HIP fat binaries, cached PyPI wheels.

Tools that are missing make the tests that need them skip with the reason; CI
installs them (g++, binutils, hipcc, clang-offload-bundler-19, llvm-19).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: debian_packages is shared by suites

from audit_helpers import Builder, need_tool, run


@pytest.fixture
def builder(tmp_path) -> Builder:
    return Builder(tmp_path)


@pytest.fixture(scope="session")
def test_cache() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


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


@pytest.fixture(scope="session")
def bundler21() -> list[str]:
    """sid's clang-offload-bundler-21 (reads and writes CCOB v3), run through sid's own dynamic loader."""
    import debian_packages as debian

    return debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/clang-offload-bundler")
