"""debian-rocm on the real engine: Debian's ROCm 7 toolchain compiles our HIP library and
flash-attention's CK fmha kernels for gfx942; the ledger, validation, and the bad inputs
(an arch dropped by the build, a hipcc failure, a Debian version the mirror lacks).

The base (debootstrap sid + the pinned toolchain layer) is made once and reused by its
input hash; BuildKit's cache and ccache make a rebuild with unchanged inputs cheap. Cold,
on the 2-core machine: base ~2 min, image ~4 min (the CK stage ~3 min): docs/rocm-toolchain.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from build_helpers import cli_build, copy_project
from cli_runner import run_cli

pytestmark = pytest.mark.slow

STACK = "recipes/stacks/debian-rocm.yaml"
HIP = "recipes/components/rocstack-hip.yaml"


@pytest.fixture(scope="module")
def debian_image(docker_engine, build_env):
    return cli_build(build_env, "--stack", "debian-rocm", "--arch", "gfx942")


def _hip_only_project(tmp_path: Path, snapshot: Path, edit) -> Path:
    """A copy of the project whose debian-rocm stack builds only rocstack-hip, with its recipe edited."""
    project = copy_project(tmp_path / "project", snapshot)
    stack = project / STACK
    stack.write_text(stack.read_text().replace("components: [rocstack-hip, ck-fmha]", "components: [rocstack-hip]")
                     .replace("component_env:\n  ck-fmha:\n", "component_env:\n  rocstack-hip:\n"))
    recipe = project / HIP
    recipe.write_text(edit(recipe.read_text()))
    return project


def test_the_image_records_what_each_component_delivers(debian_image):
    manifest = debian_image["manifest"]
    assert manifest["stack"] == "debian-rocm" and manifest["arches"] == ["gfx942"]
    by_name = {c["name"]: c for c in manifest["components"]}
    for name, library in (("rocstack-hip", "/out/rocstack-hip/lib/librocstack_hip.so"),
                          ("ck-fmha", "/out/ck-fmha/lib/librocstack_ck_fmha.so")):
        ledger = by_name[name]["ledger"]
        assert by_name[name]["effective_arches"] == ["gfx942"] and ledger["problems"] == []
        assert [o["file"] for o in ledger["outputs"]] == [library] and ledger["outputs"][0]["targets"] == ["gfx942"]
    # the CI instance set: fp16+bf16 x padded/unpadded seqlen_k, one bundle per instance unit
    assert by_name["ck-fmha"]["ledger"]["outputs"][0]["bundles"] == 4
    assert manifest["tools"]["torch"].startswith("2.14.1") and manifest["tools"]["python"].startswith("3.14")


def test_validate_checks_coverage_resources_programs_toolchain_and_debians_libraries(debian_image, build_env, tmp_path):
    image = debian_image["tags"][0]
    result = run_cli("validate", "--image", image, "--report", str(tmp_path / "report"), env=build_env)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert result.returncode == 0 and report["verdict"] == "pass", [
        (c["name"], c["evidence"]) for c in report["checks"] if c["status"] in ("fail", "error")]
    assert checks["audit:rocstack-hip"]["status"] == "pass" and checks["audit:ck-fmha"]["status"] == "pass"
    resources = checks["resources:ck-fmha"]
    assert resources["status"] == "pass" and "warning" in resources["evidence"] and "spill" in resources["evidence"]
    assert "resources.spills: warn" in resources["evidence"]
    toolchain = checks["toolchain"]
    assert toolchain["status"] == "pass" and "gfx942 (code object gfx942)" in toolchain["evidence"]
    assert checks["dpkg:librccl1"]["status"] == "pass" and "gfx942" in checks["dpkg:librccl1"]["evidence"]
    for program in ("program:rocstack-hip:ops", "program:ck-fmha:fmha-fwd"):
        # no GPU here: the program's own checks ran, then it said why it skipped (exit 77)
        assert checks[program]["status"] == "skip" and "skip: no GPU" in checks[program]["evidence"]
    assert checks["torch-variant"]["status"] == "pass"
    assert report["level"] == "static-only"


def test_jit_policy_compiles_one_kernel_with_the_images_hipcc(debian_image, docker_engine):
    """Item 6: a JIT-compiling library in this image is served by its hipcc (the probe compiles for each
    image arch); without a compiler and without AOT outputs the policy fails and says why."""
    script = (
        "import json; from types import SimpleNamespace as N\n"
        "from rocstack.arches import parse_arch_list\n"
        "from rocstack.recipes.models import JitPolicy\n"
        "from rocstack_validation.toolchain_checks import check_jit\n"
        "t = parse_arch_list('gfx942,gfx950')\n"
        "ctx = N(arches=t, arch_names=[str(x) for x in t], sysroot='/', stack=None)\n"
        "out = {}\n"
        "for compiler in ('hipcc', 'no-such-hipcc'):\n"
        "    c = N(name='jitlib', policy=N(jit=JitPolicy(compiler=compiler, arch_env='JITLIB_ARCHS', aot=['jitlib/*.so'])))\n"
        "    o = check_jit(c, ctx); out[compiler] = [o.status, o.evidence]\n"
        "print(json.dumps(out))\n")
    raw = docker_engine.containers.run(debian_image["image_id"], ["python", "-c", script], remove=True, network_disabled=True)
    out = json.loads(raw.decode().strip().splitlines()[-1])
    assert out["hipcc"][0] == "pass" and "gfx942 (code object gfx942)" in out["hipcc"][1] and "gfx950" in out["hipcc"][1]
    assert out["no-such-hipcc"][0] == "fail" and "has no no-such-hipcc and no AOT outputs" in out["no-such-hipcc"][1]


def test_an_arch_the_build_drops_fails_naming_component_and_file(docker_engine, build_env, project_snapshot, tmp_path):
    """The class of vllm#22590: the arch list never reaches the compiler (here GPU_TARGETS is hard-wired)."""
    project = _hip_only_project(tmp_path, project_snapshot,
                                lambda text: text.replace("-G Ninja $ROCSTACK_CMAKE_ARGS", "-G Ninja -DGPU_TARGETS=gfx942"))
    env = {**build_env, "ROCSTACK_ROOT": str(project)}
    result = run_cli("build", "--stack", "debian-rocm", "--arch", "gfx942,gfx950", env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: component rocstack-hip failed in stage build-rocstack-hip")
    assert "python -m rocstack.imaging.ledger --component rocstack-hip" in error and "Traceback" not in result.stderr
    assert ("rocstack-hip: requested gfx950 is missing from /out/rocstack-hip/lib/librocstack_hip.so: "
            "1 of its 1 bundle(s) (#0) carry only gfx942") in result.stderr


def test_a_hipcc_failure_names_component_stage_command_and_its_output(docker_engine, build_env, project_snapshot, tmp_path):
    broken = "    - cmake --build /tmp/build-rocstack-hip -j \"$MAX_JOBS\"\n"
    project = _hip_only_project(tmp_path, project_snapshot, lambda text: text.replace(
        broken, "    - \"printf '#error rocstack test: simulated device-code error\\\\n' >> hip/src/elementwise.hip\"\n" + broken))
    env = {**build_env, "ROCSTACK_ROOT": str(project)}
    result = run_cli("build", "--stack", "debian-rocm", "--arch", "gfx942", env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert re.match(r"error: component rocstack-hip failed in stage build-rocstack-hip \(\d/\d\), step \d/\d: "
                    r"`cmake --build /tmp/build-rocstack-hip -j 2`", error), error
    tail = [line for line in result.stderr.splitlines() if line.startswith("  | ")]
    assert any("simulated device-code error" in line for line in tail)


def test_a_debian_version_the_mirror_lacks_is_one_line_with_the_refresh(docker_engine, build_env, project_snapshot, tmp_path):
    project = copy_project(tmp_path / "project", project_snapshot)
    stack = project / STACK
    stack.write_text(stack.read_text().replace("- ninja-build=1.13.2-1", "- ninja-build=0.0.1-1"))
    result = run_cli("base", "--stack", "debian-rocm", env={**build_env, "ROCSTACK_ROOT": str(project)})
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "ninja-build=0.0.1-1 (the mirror has: 1.13.2-1" in lines[0]
    assert "rocstack apt-versions --stack debian-rocm" in lines[0]
    from rocstack.recipes.basekey import debootstrap_tag
    from rocstack.recipes.catalog import Catalog

    bad_tag = debootstrap_tag(Catalog(project).stack("debian-rocm"))
    assert not docker_engine.images.list(name=bad_tag)  # nothing half-made was imported


def test_apt_versions_lists_what_the_mirror_serves(build_env):
    result = run_cli("apt-versions", "--stack", "debian-rocm", "--check", env=build_env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^hipcc=7\.2\.4\+dfsg-1~exp1: current; apt would take 7\.2\.4\+dfsg-1~exp1; mirror has .*7\.2\.4",
                     result.stdout, re.M)
