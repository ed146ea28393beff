"""Images rocstack did not build, made from plain Dockerfiles for the any-image validation tests.

- ``rocstack-valtest-any-base:sid-<hash>``: debootstrap minbase of Debian sid with python3
  and the ROCm runtime's system dependencies (libdrm-amdgpu1, libnuma1, libelf1t64,
  libsqlite3-0), imported (~2 min, once);
- ``rocstack-valtest-any-vendor:<hash>``: + Debian's ROCm 7.2.4 runtime (libamdhip64-7,
  libhsa-runtime64-1, libhiprtc7) and librocfft0 (device code for 14 arches, declared in
  ``X-Rocm-Gpu-Architecture``), installed by dpkg from .debs downloaded with a private apt
  configuration; a vendor package ``vendorkit`` (dist-info + a HIP library that clang-19
  compiles here for gfx90a and gfx942, linked against ROCm 7's libamdhip64.so.7);
  ``PYTORCH_ROCM_ARCH=gfx90a;gfx942`` like vendor images set;
- ``-nopython``: the same with Python purged; ``-tunableop``: + a stale TunableOp table;
  ``-pycrash``: a Python that aborts on start (a package's ``.pth`` calling ``os.abort``).

Every tag carries the hash of its inputs; a second run reuses them. Only these names are
created and only older builds of the same names are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import valtest_images
from valtest_images import _has_image, _run, build_context_image, cache_dir, remove_stale

MIRROR = os.environ.get("ROCSTACK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_REPO = "rocstack-valtest-any-base"
VENDOR_REPO = "rocstack-valtest-any-vendor"
BASE_INCLUDE = ("python3", "libdrm-amdgpu1", "libnuma1", "libelf1t64", "libsqlite3-0")
# Debian's ROCm 7 runtime and one library with device code (experimental: 7.2.4)
DEBS = ("libamdhip64-7=7.2.4-1~exp2", "libhsa-runtime64-1=7.2.4+dfsg-1~exp1", "libhiprtc7=7.2.4-1~exp2",
        "librocfft0=7.2.4-1~exp1")
VENDOR_ARCHES = ("gfx90a", "gfx942")
VENDOR_SOURCE = """// a vendor's HIP library: one kernel; the one runtime entry point clang's kernel stub calls is declared
// as the HIP runtime API defines it (no HIP headers are needed for this)
struct dim3 { unsigned x, y, z; };
typedef struct ihipStream_t* hipStream_t;
extern "C" int hipLaunchKernel(const void*, dim3, dim3, void**, unsigned long, hipStream_t);
extern "C" __attribute__((global)) void vendor_scale(float* x, float a) { x[0] *= a; }
extern "C" int vendor_version(void) { return 7; }
"""
VENDOR_INIT = """import ctypes, os
_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "libvendorkit.so"))
version = _lib.vendor_version()
"""
STALE_TABLE = """Validator,PT_VERSION,2.5.1
Validator,ROCM_VERSION,6.2.0.0-66-d4bd1ad
Validator,ROCBLAS_VERSION,4.2.0-7df0aa33
Validator,HIPBLASLT_VERSION,0.10.0-a9c5cc7
Validator,GCN_ARCH_NAME,gfx1100
GemmTunableOp_float_NT,nt_4096_4096_64,Gemm_Rocblas_1219,0.033
"""


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def ensure_base(client) -> str:
    tag = f"{BASE_REPO}:sid-{_key(BASE_INCLUDE, MIRROR)}"
    if _has_image(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install -y debootstrap): cannot make the sid test base")
    with tempfile.TemporaryDirectory(prefix="anyimage-rootfs-") as tmp:
        root = Path(tmp) / "root"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_INCLUDE)}", "sid", str(root), MIRROR],
             timeout=1800)
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-", tag], stdin=tar.stdout, timeout=600)
        tar.wait()
    remove_stale(client, BASE_REPO, tag)
    return tag


def rocm_debs() -> Path:
    """Debian's ROCm 7 runtime .debs, downloaded once."""
    return download_debs(DEBS)


def download_debs(specs: tuple[str, ...]) -> Path:
    """``name=version`` .debs from sid/experimental, downloaded once with a private apt configuration
    (the host's apt state untouched), cached by the list."""
    folder = cache_dir() / f"rocm7-debs-{_key(specs, MIRROR)}"
    if (folder / ".complete").is_file():
        return folder
    apt = cache_dir() / "apt-sid"
    for sub in ("lists/partial", "cache/archives/partial", "etc"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    sources = apt / "etc" / "sources.list"
    sources.write_text("".join(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR} {suite} main\n"
                               for suite in ("sid", "experimental")))
    options = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::Cache={apt}/cache", "-o", "Dir::State::status=/dev/null",
               "-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Sandbox::User=root"]
    try:
        _run(["apt-get", *options, "update"], timeout=900)
        work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        _run(["apt-get", *options, "download", *specs], cwd=work, timeout=1800)
    except RuntimeError as exc:
        pytest.skip(f"cannot download Debian's ROCm 7 packages: {str(exc)[-300:]}")
    (work / ".complete").write_text("\n".join(specs))
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)
    return folder


def vendor_library(debs: Path, out: Path) -> Path:
    """clang-19 compiles the vendor's HIP library for gfx90a and gfx942, linked against ROCm 7's libamdhip64."""
    if shutil.which("clang-19") is None or shutil.which("ld.lld-19") is None:
        pytest.skip("clang-19 / lld-19 are not installed (CI installs them): cannot compile the vendor HIP library")
    work = out / "build"
    work.mkdir(parents=True, exist_ok=True)
    hip = next(debs.glob("libamdhip64-7_*.deb"))
    _run(["dpkg-deb", "-x", str(hip), str(work / "hip")])
    real = next((work / "hip").glob("usr/lib/x86_64-linux-gnu/libamdhip64.so.7*"))
    (work / "lib").mkdir(exist_ok=True)
    (work / "lib" / "libamdhip64.so").symlink_to(real)
    (work / "k.hip").write_text(VENDOR_SOURCE)
    library = out / "libvendorkit.so"
    _run(["clang-19", "-x", "hip", *(f"--offload-arch={a}" for a in VENDOR_ARCHES), "-nogpulib", "-nogpuinc", "-fPIC",
          "-shared", "-o", str(library), str(work / "k.hip"), "-L", str(work / "lib"), "-lamdhip64"], timeout=600)
    shutil.rmtree(work)
    return library


def _dist_info(files: dict[str, bytes]) -> dict[str, bytes]:
    record = "".join(f"{name},sha256={hashlib.sha256(data).hexdigest()},{len(data)}\n" for name, data in files.items())
    info = "vendorkit-1.0.dist-info"
    return {**files, f"{info}/METADATA": b"Metadata-Version: 2.1\nName: vendorkit\nVersion: 1.0\n",
            f"{info}/top_level.txt": b"vendorkit\n", f"{info}/RECORD": (record + f"{info}/RECORD,,\n").encode()}


VENDOR_DOCKERFILE = """FROM {base}
COPY debs/ /tmp/debs/
RUN dpkg -i --force-depends /tmp/debs/*.deb && rm -rf /tmp/debs
COPY site/ /usr/lib/python3/dist-packages/
ENV PYTORCH_ROCM_ARCH="gfx90a;gfx942"
"""


def ensure_vendor(client) -> str:
    base = ensure_base(client)
    debs = rocm_debs()
    key = _key(base, sorted(p.name for p in debs.glob("*.deb")), VENDOR_SOURCE, VENDOR_INIT, VENDOR_ARCHES,
               VENDOR_DOCKERFILE, shutil.which("clang-19") and subprocess.run(["clang-19", "--version"], capture_output=True,
                                                                               text=True).stdout.splitlines()[:1])
    tag = f"{VENDOR_REPO}:{key}"
    if _has_image(client, tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="anyimage-vendor-") as tmp:
        library = vendor_library(debs, Path(tmp))
        files = _dist_info({"vendorkit/__init__.py": VENDOR_INIT.encode(), "vendorkit/libvendorkit.so": library.read_bytes()})
        site = Path(tmp) / "site"
        for name, data in files.items():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            (site / name).write_bytes(data)
        build_context_image(client, tag, VENDOR_DOCKERFILE.format(base=base), {"debs": debs, "site": site})
    remove_stale(client, VENDOR_REPO, tag)
    return tag


VARIANTS = {
    "nopython": "RUN dpkg --purge --force-depends python3 python3-minimal $(dpkg-query -W -f '${Package}\\n' "
                "'python3.*' 'libpython3*' | tr '\\n' ' ') && ! command -v python3\n",
    "tunableop": "ENV PYTORCH_TUNABLEOP_FILENAME=/opt/tuning/tunableop_results.csv\n"
                 "COPY tunableop_results0.csv /opt/tuning/tunableop_results0.csv\n",
    # a broken package's .pth: site executes its import line at every start, before any script runs
    "pycrash": "RUN echo 'import os; os.abort()' > /usr/lib/python3/dist-packages/zz-broken.pth\n",
}


def ensure_variant(client, name: str) -> str:
    vendor = ensure_vendor(client)
    repo = f"{VENDOR_REPO}-{name}"
    tag = f"{repo}:{_key(vendor, VARIANTS[name], STALE_TABLE)}"
    if not _has_image(client, tag):
        build_context_image(client, tag, f"FROM {vendor}\n{VARIANTS[name]}",
                            {"tunableop_results0.csv": STALE_TABLE.encode()})
        remove_stale(client, repo, tag)
    return tag


def load_foreign_platform(client, tag: str = "rocstack-valtest-any-arm64:1") -> str:
    """A linux/arm64 image (one tiny layer), loaded from an image tarball made here: no registry needed."""
    layer = valtest_images.tar_bytes({"etc/hello": b"hello\n"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "arm64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
    archive = valtest_images.tar_bytes({"config.json": config, "layer/layer.tar": layer, "manifest.json": manifest})
    client.images.load(archive)
    return tag


def corrupt_import(client, tag: str = "rocstack-valtest-any-corrupt:1") -> tuple[str, Path]:
    """An image whose only layer's data is gone from the engine's storage (renamed away; the caller restores it)."""
    layer = valtest_images.tar_bytes({"etc/hello": b"hello\n"})
    subprocess.run(["docker", "import", "-", tag], input=layer, capture_output=True, check=True, timeout=120)
    data = client.images.get(tag).attrs.get("GraphDriver") or {}
    upper = (data.get("Data") or {}).get("UpperDir")
    if data.get("Name") != "overlay2" or not upper or not os.path.isdir(upper):
        client.images.remove(tag, force=True)
        pytest.skip(f"the engine's storage driver is {data.get('Name')!r} or not on this host: cannot damage a layer")
    moved = Path(upper + ".rocstack-test-moved")
    os.rename(upper, moved)
    return tag, moved
