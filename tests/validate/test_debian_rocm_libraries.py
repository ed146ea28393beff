"""Declared vs delivered for the distribution's ROCm libraries an image carries (issue 18 item 4).

Real Debian packages: experimental's librocblas5 7.2.4 declares and carries gfx942 but not gfx950;
librccl1 7.2.4 (what the debian-rocm image ships) carries both - its pass is proven on the built
image (tests/imaging/test_debian_rocm_e2e.py). The .deb comes from tests/debian_packages.py
(downloaded once into the test cache with a private apt state, shared with the audit tests)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import debian_packages as debian
from rocstack.arches import parse_arch_list
from rocstack_validation.toolchain_checks import check_package, rocm_packages

pytestmark = pytest.mark.slow

LIBRARY = "usr/lib/x86_64-linux-gnu/librocblas.so.5.2"


@pytest.fixture(scope="module")
def rocblas_root(tmp_path_factory):
    """A root holding librocblas5's main library as dpkg installed it (status + file list), from the
    audit tests' cached download of the real package (tests/debian_packages.py)."""
    unpacked = debian.tree(debian.ROCBLAS)
    fields = debian.control(debian.ROCBLAS)
    root = tmp_path_factory.mktemp("rocblas-root")
    (root / LIBRARY).parent.mkdir(parents=True)
    try:
        os.link(unpacked / LIBRARY, root / LIBRARY)
    except OSError:  # another filesystem: a symlink would be skipped by the check, so copy
        import shutil
        shutil.copyfile(unpacked / LIBRARY, root / LIBRARY)
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    stanza = "".join(f"{k}: {v.replace(chr(10), chr(10) + ' ')}\n" for k, v in fields.items())
    (root / "var/lib/dpkg/status").write_text(stanza + "Status: install ok installed\n\n")
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
