"""Real kpack-split libraries, made by the upstream rocm-kpack tool, cached by input hash.

HIP libraries are compiled by the host's hipcc (Debian's ROCm 5.2) and split by
``../shared/third_party/rocm-kpack`` (``rocm_kpack.tools.split_artifacts``, run under
Python >= 3.12 in a venv under the test cache), then laid out the way TheRock's wheels
install them (:func:`therock_tree`): ``torch/lib`` + ``torch/.kpack``,
``_rocm_sdk_libraries/lib`` + ``_rocm_sdk_libraries/.kpack``, and a ``_rocm_sdk_devel`` tree
whose library is a hardlinked (or symlinked) copy. zstd archives are re-packed by the
upstream ``PackedKernelArchive`` with its ``ZstdCompressor``.

The build (~1 CPU-minute cold: three hipcc links, a venv, the splits) lands in
``$ROCSTACK_TEST_CACHE/kpack/<hash of sources, flags, hipcc version, upstream tool>``; a
warm run only copies files. Missing pieces (../shared, Python >= 3.12, hipcc) make the
tests skip with the reason. Reusable outside the audit tests (the validate tests lay the
same tree into an image).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from audit_helpers import need_tool, run

FIXTURE_VERSION = "1"  # bump when the layout below changes
REPO = Path(__file__).resolve().parents[2]
SITE = "opt/venv/lib/python3.12/site-packages"  # where rocstack's Sysroot looks for site-packages

_COMMON = "#include <hip/hip_runtime.h>\n"
SOURCES = {
    "a.hip": _COMMON + (
        "__global__ void scale(float* x, float a, int n) {\n"
        "  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= a; }\n"
        'extern "C" int launch_scale(float* x, float a, int n) {\n'
        "  hipLaunchKernelGGL(scale, dim3((n + 255) / 256), dim3(256), 0, 0, x, a, n); return 0; }\n"),
    # a second translation unit; gather_private indexes a stack array dynamically: scratch memory
    "b.hip": _COMMON + (
        "__global__ void add(float* x, const float* y, int n) {\n"
        "  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] += y[i]; }\n"
        "__global__ void gather_private(float* x, const int* idx, int n) {\n"
        "  float buf[256];\n"
        "  for (int j = 0; j < 256; ++j) buf[j] = x[j * n + threadIdx.x];\n"
        "  x[threadIdx.x] = buf[idx[threadIdx.x] & 255]; }\n"
        'extern "C" int launch_add(float* x, const float* y, int n) {\n'
        "  hipLaunchKernelGGL(add, dim3((n + 255) / 256), dim3(256), 0, 0, x, y, n); return 0; }\n"),
    "c.hip": _COMMON + (
        "__global__ void fill(float* x, float v, int n) {\n"
        "  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] = v; }\n"
        'extern "C" int launch_fill(float* x, float v, int n) {\n'
        "  hipLaunchKernelGGL(fill, dim3((n + 255) / 256), dim3(256), 0, 0, x, v, n); return 0; }\n"),
}
# name -> (sources, hipcc flags): two TUs, three arches (Debian's ROCm 5.2 has no gfx1100 device
# library), linked by lld (it writes a PT_PHDR, as TheRock's toolchain does); the same with
# -fgpu-rdc linked by GNU ld; one TU for gfx90a xnack-/xnack+.
LIBRARIES = {
    "libk.so": (["a.hip", "b.hip"], ["-fuse-ld=lld", "--offload-arch=gfx90a", "--offload-arch=gfx1030",
                                     "--offload-arch=gfx908"]),
    "librdc.so": (["a.hip", "b.hip"], ["-fgpu-rdc", "--offload-arch=gfx90a", "--offload-arch=gfx1030"]),
    "libxnack.so": (["c.hip"], ["-fuse-ld=lld", "--offload-arch=gfx90a:xnack-", "--offload-arch=gfx90a:xnack+"]),
}
# artifact -> (artifact prefix = archive group, manifest prefix, {path in prefix: built library})
ARTIFACTS = {
    "hip_lib": ("hip_lib", "lib", {"libk.so": "libk.so", "librdc.so": "librdc.so"}),
    "torch": ("torch", "torch", {"lib/libtorch_hip.so": "libk.so"}),
    "torch_xnack": ("torch", "torch", {"lib/libtorch_xnack.so": "libxnack.so"}),
    "aotriton": ("aotriton", "torch", {"lib/libaotriton_v2.so": "libk.so"}),
    "blas_lib": ("blas_lib", "_rocm_sdk_libraries", {"lib/libblas_lib.so": "libk.so"}),
}


def shared_dir() -> Path | None:
    """``../shared`` beside the checkout (for a git worktree: beside its main checkout)."""
    if os.environ.get("ROCSTACK_SHARED"):  # an explicit choice, also how to test the skip
        candidates = [os.environ["ROCSTACK_SHARED"]]
    else:
        candidates = [REPO.parent / "shared", REPO / "shared"]
    git = REPO / ".git"
    if git.is_file() and not os.environ.get("ROCSTACK_SHARED"):  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            candidates.append(Path(text.split(":", 1)[1].strip()).parents[2].parent / "shared")
    for item in candidates:
        if item and (Path(item) / "third_party" / "rocm-kpack" / "python" / "rocm_kpack").is_dir():
            return Path(item)
    return None


def upstream_kpack() -> Path:
    shared = shared_dir()
    if shared is None:
        pytest.skip("../shared/third_party/rocm-kpack is absent (the upstream kpack tool makes these fixtures)")
    return shared / "third_party" / "rocm-kpack"


def python312() -> Path:
    """A Python >= 3.12 for the upstream tool: pyenv's, else one on PATH."""
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    found = []
    for root in filter(None, roots):
        found += sorted(Path(root).glob("versions/3.1[2-9]*/bin/python3"))
    for name in ("python3.12", "python3.13", "python3.14"):
        if shutil.which(name):
            found.append(Path(shutil.which(name)))
    if not found:
        pytest.skip("no Python >= 3.12 (pyenv or PATH): the upstream rocm-kpack tool needs it")
    return found[0]


def cache_root() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests")) / "kpack"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class KpackBuild:
    """The cached build: compiled libraries, upstream split outputs, zstd re-packs, the tool's venv."""

    root: Path
    python: Path  # the venv's interpreter (msgpack + zstandard)
    upstream: Path  # .../rocm-kpack

    @property
    def built(self) -> Path:
        return self.root / "built"

    def split(self, artifact: str, compression: str = "none") -> Path:
        return self.root / ("split" if compression == "none" else "split-zstd") / artifact

    def upstream_python(self, code: str, *args: str, timeout: int = 300) -> str:
        """Run ``code`` under the tool's Python with ``rocm_kpack`` importable."""
        return run([str(self.python), "-c", code, *args], env={"PYTHONPATH": str(self.upstream / "python")},
                   timeout=timeout)

    def upstream_read(self, archive: Path) -> dict:
        """The archive as the upstream reader sees it: header fields and sha256 of every kernel."""
        out = self.upstream_python(_UPSTREAM_DUMP, str(archive))
        return json.loads(out)


_UPSTREAM_DUMP = """
import hashlib, json, sys
from pathlib import Path
from rocm_kpack.kpack import PackedKernelArchive
a = PackedKernelArchive.read(Path(sys.argv[1]))
print(json.dumps({"group_name": a.group_name, "gfx_arch_family": a.gfx_arch_family, "gfx_arches": a.gfx_arches,
                  "kernels": {key: {arch: hashlib.sha256(a.get_kernel(key, arch)).hexdigest() for arch in arches}
                              for key, arches in a.toc.items()}}))
"""

_ZSTD_REPACK = """
import sys
from pathlib import Path
from rocm_kpack.kpack import PackedKernelArchive
from rocm_kpack.compression import ZstdCompressor
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
old = PackedKernelArchive.read(src)
new = PackedKernelArchive(old.group_name, old.gfx_arch_family, old.gfx_arches, compressor=ZstdCompressor())
for key, arches in old.toc.items():
    for arch, entry in arches.items():
        new.add_kernel(new.prepare_kernel(key, arch, old.get_kernel(key, arch), entry.get("metadata")))
new.finalize_archive()
new.write(dst)
"""


def kpack_build() -> KpackBuild:
    """Build (or reuse) everything, under a lock so parallel sessions share one cache entry."""
    upstream = upstream_kpack()
    python = python312()
    need_tool("hipcc", "objcopy", "readelf", "clang-offload-bundler-19")
    hipcc = run(["hipcc", "--version"], env={"HIP_PLATFORM": "amd"})
    compiled_key = _key(SOURCES, LIBRARIES, hipcc)
    key = _key(FIXTURE_VERSION, compiled_key, ARTIFACTS, _tree_hash(upstream / "python"), str(python))
    cache = cache_root()
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        venv = _venv(cache, python)
        compiled = _cached(cache / f"compiled-{compiled_key}", _compile)
        final = _cached(cache / f"split-{key}", lambda work: _split(KpackBuild(work, venv, upstream), compiled))
    return KpackBuild(final, venv, upstream)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _cached(final: Path, make) -> Path:
    """``final``, made by ``make(work_dir)`` unless an earlier run finished it (then renamed into place)."""
    if not (final / "done").is_file():
        work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
        try:
            make(work)
            (work / "done").write_text(final.name)
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _venv(cache: Path, python: Path) -> Path:
    version = run([str(python), "-c", "import sys; print(sys.version.split()[0])"]).strip()
    venv = cache / f"venv-{version}"
    interpreter = venv / "bin" / "python"
    if not (venv / "ready").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        run([str(python), "-m", "venv", str(venv)])
        done = subprocess.run([str(interpreter), "-m", "pip", "install", "-q", "msgpack", "zstandard"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"cannot install msgpack/zstandard for the upstream tool: {done.stderr.strip()[-300:]}")
        (venv / "ready").write_text(version)
    return interpreter


def _compile(work: Path) -> None:
    src = work / "src"
    src.mkdir(parents=True)
    for name, text in SOURCES.items():
        (src / name).write_text(text)
    for name, (sources, flags) in LIBRARIES.items():
        run(["hipcc", *flags, "-shared", "-fPIC", "-o", str(work / name), *sources],
            cwd=src, env={"HIP_PLATFORM": "amd"}, timeout=900)


def _split(build: KpackBuild, compiled: Path) -> None:
    shutil.copytree(compiled, build.built, ignore=shutil.ignore_patterns("src", "done"))
    for artifact, (group, prefix, members) in ARTIFACTS.items():
        art = build.root / "artifacts" / artifact
        for rel, built in members.items():
            (art / prefix / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(build.built / built, art / prefix / rel)
        (art / "artifact_manifest.txt").write_text(prefix + "\n")
        out = build.split(artifact)
        run([str(build.python), "-m", "rocm_kpack.tools.split_artifacts", "--artifact-dir", str(art),
             "--artifact-prefix", group, "--output-dir", str(out),
             "--clang-offload-bundler", shutil.which("clang-offload-bundler-19")],
            env={"PYTHONPATH": str(build.upstream / "python")}, timeout=600)
        zstd = build.split(artifact, "zstd")
        shutil.copytree(out, zstd, symlinks=True)
        for archive in sorted(p for p in zstd.rglob("*.kpack") if p.is_file()):
            build.upstream_python(_ZSTD_REPACK, str(out / archive.relative_to(zstd)), str(archive))


# the wheels TheRock installs into site-packages: distribution, version, top-level directory
WHEELS = (("torch", "2.12.0+rocm7.14", "torch"), ("rocm-sdk-libraries", "7.14.0", "_rocm_sdk_libraries"),
          ("rocm-sdk-devel", "7.14.0", "_rocm_sdk_devel"))


@dataclass
class TherockTree:
    root: Path  # the root filesystem
    site: Path  # its site-packages

    def inside(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.root))


def therock_tree(build: KpackBuild, dest: Path, *, artifacts=("torch", "aotriton", "blas_lib", "hip_lib"),
                 arches=("gfx90a", "gfx1030", "gfx908"), compression: str = "none", devel: str | None = "hardlink",
                 drop: tuple[str, ...] = ()) -> TherockTree:
    """A root filesystem laid out like TheRock's wheels (site-packages, each with its dist-info) plus a
    /opt/rocm-like prefix.

    ``hip_lib`` goes to ``/opt/rocm/lib`` (its archives to ``/opt/rocm/lib/.kpack``), the others
    to site-packages; only the archives of ``arches`` (and their feature overlays) are installed,
    minus the file names in ``drop``. ``devel``: how ``_rocm_sdk_devel/lib`` holds the libraries
    of ``_rocm_sdk_libraries`` ("hardlink", "symlink", None).
    """
    site = dest / SITE
    for artifact in artifacts:
        target = dest / "opt" / "rocm" if artifact == "hip_lib" else site
        split = build.split(artifact, compression)
        for part in sorted(split.iterdir()):
            arch = part.name[len(ARTIFACTS[artifact][0]) + 1:]
            if arch != "generic" and arch.split(":")[0] not in arches:
                continue
            for path in sorted(part.rglob("*")):
                if path.name == "artifact_manifest.txt" or path.name in drop or path.is_dir():
                    continue
                out = target / path.relative_to(part)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
    libraries = site / "_rocm_sdk_libraries" / "lib"
    if devel and libraries.is_dir():
        folder = site / "_rocm_sdk_devel" / "lib"
        folder.mkdir(parents=True, exist_ok=True)
        for lib in sorted(libraries.glob("*.so")):
            if devel == "hardlink":
                os.link(lib, folder / lib.name)
            else:
                os.symlink(os.path.relpath(lib, folder), folder / lib.name)
    for name, version, top in WHEELS:  # what pip leaves: METADATA and a RECORD of the wheel's files
        if (site / top).is_dir():
            info = site / f"{name.replace('-', '_')}-{version}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            files = sorted(str(p.relative_to(site)) for p in (site / top).rglob("*") if not p.is_dir())
            (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return TherockTree(dest, site)


def stock_patchelf() -> Path:
    """Debian's patchelf: the one on PATH, else the bookworm .deb unpacked into the test cache."""
    found = shutil.which("patchelf")
    if found:
        return Path(found)
    folder = cache_root() / "patchelf"
    binary = folder / "root" / "usr" / "bin" / "patchelf"
    if not binary.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["apt-get", "download", "patchelf"], cwd=folder, capture_output=True, text=True,
                              timeout=300)
        debs = sorted(folder.glob("patchelf_*.deb"))
        if done.returncode != 0 or not debs:
            pytest.skip(f"cannot download Debian's patchelf: {done.stderr.strip()[-200:]}")
        run(["dpkg-deb", "-x", str(debs[-1]), str(folder / "root")])
    return binary


@pytest.fixture(scope="session")
def kbuild() -> KpackBuild:
    """The cached upstream-made build (import this fixture into a test module to use it)."""
    return kpack_build()
