"""`rocstack validate` on images rocstack did not build, on the real engine (slow; CI runs them).

The images (:mod:`anyimage_images`) carry Debian's ROCm 7 runtime and a vendor's HIP
library; the same without Python, with a stale TunableOp table, with a Python that
aborts on start; a linux/arm64 image; an image whose layer data is gone. Every run is
the real command in a subprocess; reports are parsed back, SARIF included.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import anyimage_images as images

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["rocstack", "validate", *args], capture_output=True, text=True, cwd=REPO, timeout=1200,
                          env={**os.environ, **(env or {})})


def _leftovers(client, tag: str) -> list:
    return client.containers.list(all=True, filters={"label": "io.rocstack.validation=1", "ancestor": tag})


def _temp_dirs() -> set[str]:
    root = tempfile.gettempdir()
    return set(glob.glob(os.path.join(root, "rocstack-image-*")) + glob.glob(os.path.join(root, "rocstack-probe-*")))


def _one_error_line(proc) -> str:
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def vendor(docker_engine):
    return images.ensure_vendor(docker_engine)


def _checks(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


def test_vendor_image_static_and_in_image(docker_engine, vendor, tmp_path):
    before = _temp_dirs()
    image_id = docker_engine.images.get(vendor).id
    proc = run_cli("--image", vendor, "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    checks = _checks(report)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert report["verdict"] == "pass" and report["level"] == "static-only" and report["mode"] == "any-image"
    assert report["targets"]["source"] == "env PYTORCH_ROCM_ARCH" and report["arches"] == ["gfx90a", "gfx942"]
    # the static part audited Debian's packages and the vendor's wheel-like install, each a component
    assert checks["audit:librocfft0"]["status"] == "pass" and checks["audit:vendorkit"]["status"] == "pass"
    assert checks["audit:libamdhip64-7"]["status"] == "pass"
    assert any(f.endswith("libvendorkit.so") for f in checks["audit:vendorkit"]["details"]["files"])
    assert report["versions"]["rocm"]["value"] == "7.2.4"
    # the in-image part ran with the image's own Python 3 and loaded the vendor's HIP library through ROCm 7's loader
    assert checks["python"]["status"] == "pass" and checks["python"]["details"]["interpreter"]["path"].endswith("python3")
    assert checks["import:vendorkit"]["status"] == "pass", checks["import:vendorkit"]["evidence"]
    assert checks["gpu-arch"]["status"] == "skip" and checks["torch-variant"]["status"] == "skip"
    # nothing left behind: no container, no temp dirs, the image unchanged
    assert _leftovers(docker_engine, vendor) == [] and _temp_dirs() == before
    assert docker_engine.images.get(vendor).id == image_id
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "level: **static-only" in summary and "## Coverage" in summary
    html = (tmp_path / "r" / "report.html").read_text()
    assert "static-only" in html and ("heatmap" in html or "Not available" in html)
    sarif = json.loads((tmp_path / "r" / "report.sarif").read_text())
    assert sarif["version"] == "2.1.0" and not [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]


def test_vendor_image_for_an_arch_its_library_lacks(vendor, tmp_path):
    proc = run_cli("--image", vendor, "--arch", "gfx1100", "--require-gpu", "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    checks = _checks(report)
    assert proc.returncode == 1 and report["verdict"] == "fail" and report["targets"]["source"] == "--arch"
    assert checks["audit:vendorkit"]["status"] == "fail" and "gfx1100" in checks["audit:vendorkit"]["evidence"]
    assert checks["gpu-required"]["status"] == "fail" and "static-only" in checks["gpu-required"]["evidence"]
    sarif = json.loads((tmp_path / "r" / "report.sarif").read_text())
    located = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "rocstack/audit/arch-coverage"]
    assert located and located[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "IMAGEROOT"
    assert located[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("vendorkit/libvendorkit.so")


def test_image_without_python_gets_the_static_part(docker_engine, tmp_path):
    tag = images.ensure_variant(docker_engine, "nopython")
    proc = run_cli("--image", tag, "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    checks = _checks(report)
    assert proc.returncode == 0 and report["verdict"] == "pass" and report["level"] == "static-only"
    assert report["python"] is None and "no Python" in checks["python"]["evidence"] and checks["python"]["status"] == "skip"
    assert checks["audit:librocfft0"]["status"] == "pass"
    assert "the image has no Python: static part only" in report["notes"]


def test_stale_tunableop_table_is_a_finding_per_line(docker_engine, tmp_path):
    tag = images.ensure_variant(docker_engine, "tunableop")
    proc = run_cli("--image", tag, "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    check = _checks(report)["tunableop:/opt/tuning/tunableop_results0.csv"]
    assert proc.returncode == 1 and check["status"] == "fail"
    errors = {f["key"]: f for f in check["details"]["findings"] if f["severity"] == "error"}
    assert set(errors) == {"ROCM_VERSION", "GCN_ARCH_NAME"}
    assert errors["ROCM_VERSION"]["line"] == 2 and "7.2.4" in errors["ROCM_VERSION"]["message"]
    assert errors["GCN_ARCH_NAME"]["line"] == 5
    sarif = json.loads((tmp_path / "r" / "report.sarif").read_text())
    lines = sorted(r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in sarif["runs"][0]["results"]
                   if r["ruleId"] == "rocstack/tunableop/validator" and r["level"] == "error")
    assert lines == [2, 5]


def test_python_that_crashes_on_start_is_one_line_and_leaves_nothing(docker_engine, tmp_path):
    tag = images.ensure_variant(docker_engine, "pycrash")
    before = _temp_dirs()
    proc = run_cli("--image", tag, "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    python = _checks(report)["python"]
    assert proc.returncode == 2 and report["verdict"] == "error" and python["status"] == "error"
    # os.abort() in PID 1 ends as SIGABRT or, where PID 1 ignores it, SIGSEGV: a crash either way
    assert re.search(r"crashed on start \(exit 1[34]\d, SIG[A-Z]+\)", python["evidence"]) and "\n" not in python["evidence"]
    assert "Traceback" not in proc.stderr
    assert _leftovers(docker_engine, tag) == [] and _temp_dirs() == before


def test_several_images_side_by_side(docker_engine, vendor, tmp_path):
    nopython = images.ensure_variant(docker_engine, "nopython")
    proc = run_cli("--image", vendor, "--image", nopython, "--report", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    comparison = json.loads((tmp_path / "r" / "comparison.json").read_text())
    assert [i["reference"] for i in comparison["images"]] == [vendor, nopython]
    rows = {r["name"]: r["cells"] for r in comparison["rows"]}
    assert rows["verdict"] == ["PASS", "PASS"] and rows["import:vendorkit"] == ["PASS", "-"]
    for item in comparison["images"]:
        assert (tmp_path / "r" / item["report"]).is_file()
    assert "| import:vendorkit | PASS | - |" in (tmp_path / "r" / "comparison.md").read_text()


def test_ci_annotations_summary_and_folding(docker_engine, tmp_path):
    tag = images.ensure_variant(docker_engine, "tunableop")
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step output\n")
    proc = run_cli("--image", tag, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("::error")]
    assert proc.returncode == 1 and 1 <= len(errors) <= 10
    assert any("tunableop" in ln and "ROCM_VERSION" in ln for ln in errors)
    assert proc.stderr.count("::group::") == proc.stderr.count("::endgroup::") >= 3
    text = summary.read_text()
    assert text.startswith("earlier step output\n") and "| image | verdict | level |" in text and "FAIL" in text
    gitlab = run_cli("--image", tag, env={"GITLAB_CI": "true", "GITHUB_ACTIONS": ""})
    assert "section_start:" in gitlab.stderr and "section_end:" in gitlab.stderr and "::error" not in gitlab.stderr


def test_image_that_is_not_linux_amd64_is_refused(docker_engine, tmp_path):
    tag = images.load_foreign_platform(docker_engine)
    try:
        proc = run_cli("--image", tag, "--report", str(tmp_path / "r"))
        assert proc.returncode == 2 and "linux/arm64, not linux/amd64" in _one_error_line(proc)
        assert not (tmp_path / "r").exists()
    finally:
        docker_engine.images.remove(tag, force=True)


def test_corrupt_layer_is_one_line_and_leaves_nothing(docker_engine, tmp_path):
    tag, moved = images.corrupt_import(docker_engine)
    before = _temp_dirs()
    try:
        proc = run_cli("--image", tag, "--report", str(tmp_path / "r"))
        line = _one_error_line(proc)
        assert proc.returncode == 2 and "could not export the filesystem" in line and "damaged" in line
        assert not (tmp_path / "r").exists() and _leftovers(docker_engine, tag) == [] and _temp_dirs() == before
    finally:
        os.rename(moved, str(moved).removesuffix(".rocstack-test-moved"))
        docker_engine.images.remove(tag, force=True)


THEROCK_REPO = "rocstack-valtest-any-therock"


def test_therock_like_image_with_kpack_split_libraries(docker_engine, tmp_path):
    """TheRock's layout: torch and ROCm libraries whose device code sits in per-arch .kpack archives, made by the
    upstream rocm-kpack tool, with the four failures users hit: an incomplete xnack overlay (TheRock#7081), one
    group's archive missing beside the others (pytorch#194498), a hardlinked devel copy (TheRock PR #5768) and a
    library run through a stock patchelf."""
    import kpack_fixtures  # tests/audit (on sys.path through tests/validate/conftest.py)
    from audit_helpers import run

    build = kpack_fixtures.kpack_build()
    tree = kpack_fixtures.therock_tree(build, tmp_path / "tree", arches=("gfx90a",), devel=None,
                                       artifacts=("torch", "torch_xnack", "aotriton", "blas_lib", "hip_lib"),
                                       drop=("aotriton_gfx90a.kpack",))
    patched = tree.root / "opt/rocm/lib/libk.so"
    run([str(kpack_fixtures.stock_patchelf()), "--set-rpath",
                        "$ORIGIN/../lib64:$ORIGIN/a/long/enough/path/to/need/more/room", str(patched)])
    site = "/" + kpack_fixtures.SITE
    # the devel tree's hardlink is made in the image: a build context copies hardlinks as separate files
    dockerfile = (f"FROM {images.ensure_base(docker_engine)}\nCOPY tree/ /\n"
                  f"RUN mkdir -p {site}/_rocm_sdk_devel/lib && ln {site}/_rocm_sdk_libraries/lib/libblas_lib.so "
                  f"{site}/_rocm_sdk_devel/lib/libblas_lib.so\n")
    listing = sorted(str(p.relative_to(tree.root)) for p in tree.root.rglob("*"))
    tag = f"{THEROCK_REPO}:" + images._key(build.root.name, listing, dockerfile,
                                           hashlib.sha256(patched.read_bytes()).hexdigest())
    if not images._has_image(docker_engine, tag):
        images.build_context_image(docker_engine, tag, dockerfile, {"tree": tree.root})
        images.remove_stale(docker_engine, THEROCK_REPO, tag)
    proc = run_cli("--image", tag, "--arch", "gfx90a", "--report", str(tmp_path / "r"))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    checks = _checks(report)
    assert proc.returncode == 1 and report["verdict"] == "fail", proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr

    def errors(name: str) -> dict[str, list[str]]:
        """Device-code errors by file (the tree brings no HIP runtime: its host libraries do not resolve)."""
        out: dict[str, list[str]] = {}
        for f in checks[name]["details"]["findings"]:
            if f["severity"] == "error" and f["check"] in ("arch-coverage", "hip-fatbin", "input"):
                out.setdefault(f["file"], []).append(f["message"])
        return out

    torch, sdk, rocm = errors("audit:torch"), errors("audit:rocm-sdk-libraries"), errors("audit:/opt/rocm")
    assert any("TheRock#7081" in m for m in torch[f"{site}/torch/lib/libtorch_hip.so"])
    assert any("pytorch#194498" in m for m in torch[f"{site}/torch/lib/libaotriton_v2.so"])
    assert f"{site}/torch/lib/libtorch_xnack.so" not in torch  # its overlay holds it
    [devel] = sdk[f"{site}/_rocm_sdk_libraries/lib/libblas_lib.so"]  # loaded from its hardlink in the devel tree
    assert "TheRock PR #5768" in devel and devel.startswith(f"{site}/_rocm_sdk_devel/lib/libblas_lib.so: no kpack")
    assert any("PT_PHDR" in m and "no PT_LOAD maps it" in m for m in rocm["/opt/rocm/lib/libk.so"])
    # the coverage matrix names the archives, as paths inside the image
    rows = {r["name"]: r for r in report["coverage"]["rows"]}
    assert rows[f"{site}/torch/lib/libtorch_xnack.so"]["cells"]["gfx90a"]["archives"] == \
        [f"{site}/torch/.kpack/torch_gfx90a:xnack-.kpack"]
    assert rows["/opt/rocm/lib/libk.so"]["cells"]["gfx90a"] == {
        "status": "covered", "sources": ["kpack"], "archives": ["/opt/rocm/lib/.kpack/hip_lib_gfx90a.kpack"]}
    assert rows[f"{site}/_rocm_sdk_libraries/lib/libblas_lib.so"]["cells"]["gfx90a"]["status"] == "partial"
    assert rows[f"{site}/torch/lib/libtorch_hip.so"]["cells"]["gfx90a"]["status"] == "missing"
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "kpack (hip_lib_gfx90a.kpack)" in summary
