"""validate's static audit of a TheRock-like tree: kpack coverage per component, the image's ROCM_KPACK_*.

The tree is the one the slow end-to-end test puts into an image (libraries split by the upstream
rocm-kpack tool, laid out as TheRock's wheels, kpack_fixtures); here it is read as an extracted image
filesystem, with the image config's environment, without an engine.
"""

from __future__ import annotations

import pytest

from rocstack.arches import parse_arch_list
from rocstack.validate.inventory import Inventory
from rocstack.validate.static import run_static_audit

from kpack_fixtures import SITE, kbuild, therock_tree  # noqa: F401  (kbuild is a fixture)

TORCH_HIP = f"/{SITE}/torch/lib/libtorch_hip.so"


@pytest.fixture
def image(kbuild, tmp_path):
    return lambda **layout: therock_tree(kbuild, tmp_path / "root", **layout)


def checks_of(static) -> dict:
    return {c["name"]: c for c in static.checks}


def device_errors(check: dict) -> list[dict]:
    """The check's device-code errors (the bare tree has no libc: host resolution fails there, by design)."""
    return [f for f in check["details"]["findings"] if f["severity"] == "error"
            and f["check"] in ("arch-coverage", "hip-fatbin", "declared-arches")]


def test_complete_install_passes_with_the_archives_as_sources(image):
    tree = image(artifacts=("torch", "blas_lib"), arches=("gfx90a",), devel=None)
    static = run_static_audit(Inventory.read(tree.root, {"Env": ["PATH=/opt/venv/bin:/usr/bin"]}),
                              parse_arch_list("gfx90a"))
    groups = {g.name: g for g in static.groups}
    assert set(groups) == {"torch 2.12.0+rocm7.14", "rocm-sdk-libraries 7.14.0"}  # the wheels' dist-info
    kpack = {r["name"]: r for r in static.coverage["rows"] if r["sources"] == ["kpack"]}
    cell = kpack[TORCH_HIP]["cells"]["gfx90a"]
    assert cell["status"] == "covered" and cell["archives"] == [f"/{SITE}/torch/.kpack/torch_gfx90a.kpack"]
    assert kpack[TORCH_HIP]["component"] == "torch 2.12.0+rocm7.14"  # one component per group, not per path
    assert {c["name"] for c in static.coverage["components"]} == set(groups)
    kpack_findings = [f for c in static.checks for f in (c.get("details") or {}).get("findings", [])
                      if f["check"] in ("arch-coverage", "hip-fatbin")]
    assert kpack_findings == []


def test_incomplete_overlay_fails_the_torch_component(image):
    tree = image(artifacts=("torch", "torch_xnack"), arches=("gfx90a",))
    static = run_static_audit(Inventory.read(tree.root, {}), parse_arch_list("gfx90a"))
    torch = checks_of(static)["audit:torch"]
    errors = device_errors(torch)
    assert torch["status"] == "fail" and errors and all("TheRock#7081" in f["message"] for f in errors)
    assert {f["file"] for f in errors} == {TORCH_HIP} and "remove the incomplete overlay" in errors[0]["hint"]


def test_the_image_environment_steers_kpack(image):
    tree = image(artifacts=("torch",), arches=("gfx90a",))
    disabled = run_static_audit(Inventory.read(tree.root, {"Env": ["ROCM_KPACK_DISABLE=1"]}), parse_arch_list("gfx90a"))
    check = checks_of(disabled)["audit:image"]
    assert check["status"] == "fail" and "ROCM_KPACK_DISABLE turns kpack off" in check["evidence"]
    moved = tree.root / "archives"
    moved.mkdir()
    (tree.site / "torch/.kpack/torch_gfx90a.kpack").rename(moved / "torch_gfx90a.kpack")
    lost = run_static_audit(Inventory.read(tree.root, {}), parse_arch_list("gfx90a"))
    assert [f["file"] for f in device_errors(checks_of(lost)["audit:torch"])] == [TORCH_HIP]
    found = run_static_audit(Inventory.read(tree.root, {"Env": ["ROCM_KPACK_PATH=/archives/torch_gfx90a.kpack"]}),
                             parse_arch_list("gfx90a"))
    assert device_errors(checks_of(found)["audit:torch"]) == []
    row = next(r for r in found.coverage["rows"] if r["name"] == TORCH_HIP)
    assert row["cells"]["gfx90a"]["archives"] == ["/archives/torch_gfx90a.kpack"]
