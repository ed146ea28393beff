"""Declared vs delivered for the distribution's ROCm libraries an image carries (issue 18 item 4).

Real Debian packages: experimental's librocblas5 7.2.4 declares and carries gfx942 but not gfx950;
librccl1 7.2.4 (what the debian-rocm image ships) carries both - its pass is proven on the built
image (tests/imaging/test_debian_rocm_e2e.py). The .deb is downloaded once into the test cache
with a private apt state (the host's apt is not touched)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from rocstack.arches import parse_arch_list
from rocstack_validation.toolchain_checks import check_package, rocm_packages

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests")) / "debian-rocm" / "debs"
ROCBLAS = "librocblas5_7.2.4-1~exp1_amd64.deb"
LIBRARY = "usr/lib/x86_64-linux-gnu/librocblas.so.5.2"


def _download(name: str, version: str) -> Path:
    target = CACHE / f"{name}_{version}_amd64.deb"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        (state / "sources.list").write_text("deb http://deb.debian.org/debian experimental main\n")
        for sub in ("lists/partial", "cache/archives/partial"):
            (state / sub).mkdir(parents=True)
        (state / "status").write_text("")
        opts = [f"-oDir::Etc::SourceList={state / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State::Lists={state / 'lists'}", f"-oDir::Cache={state / 'cache'}",
                f"-oDir::State::status={state / 'status'}", "-oAcquire::Check-Valid-Until=false", "-oAPT::Architectures=amd64"]
        for argv in (["apt-get", *opts, "update"], ["apt-get", *opts, "download", f"{name}={version}"]):
            result = subprocess.run(argv, cwd=CACHE, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.skip(f"cannot download {name}={version} from Debian: {result.stderr.strip()[-300:]}")
    found = sorted(CACHE.glob(f"{name}_*{version.split(':')[-1].split('~')[0]}*_amd64.deb"))
    if not found:
        pytest.skip(f"apt-get download left no {name} .deb in {CACHE}")
    return found[0]


@pytest.fixture(scope="module")
def rocblas_root(tmp_path_factory):
    """A root holding librocblas5's main library as dpkg installed it (status + file list)."""
    deb = _download("librocblas5", "7.2.4-1~exp1")
    root = tmp_path_factory.mktemp("rocblas-root")
    unpacked = tmp_path_factory.mktemp("rocblas-deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    (root / LIBRARY).parent.mkdir(parents=True)
    os.link(unpacked / LIBRARY, root / LIBRARY)
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(control.rstrip("\n") + "\nStatus: install ok installed\n\n")
    (info / "librocblas5:amd64.list").write_text(f"/.\n/usr/lib/x86_64-linux-gnu\n/{LIBRARY}\n")
    return root


def _context(root: Path, arches: str):
    targets = parse_arch_list(arches)
    return SimpleNamespace(sysroot=str(root), arches=targets, arch_names=[str(t) for t in targets])


def test_an_image_claiming_gfx950_is_told_rocblas_lacks_it(rocblas_root):
    [package] = rocm_packages(str(rocblas_root))
    assert package.name == "librocblas5" and "gfx942" in package.gpu_arches and "gfx950" not in package.gpu_arches
    outcome = check_package(package, _context(rocblas_root, "gfx942,gfx950"))
    assert outcome.status == "fail", outcome.evidence
    assert "librocblas5 7.2.4-1~exp1 does not serve every image arch (gfx942, gfx950)" in outcome.evidence
    assert "no gfx950" in outcome.evidence and "librocblas.so.5.2 lacks gfx950" in outcome.evidence
    assert "gfx942" not in outcome.details["lacking"] and "gfx942" in outcome.details["delivered"]


def test_the_same_library_passes_for_the_arch_it_carries(rocblas_root):
    [package] = rocm_packages(str(rocblas_root))
    outcome = check_package(package, _context(rocblas_root, "gfx942"))
    assert outcome.status == "pass", outcome.evidence
    assert "declared and delivered" in outcome.evidence
