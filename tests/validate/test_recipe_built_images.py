"""Broken components built from test recipes by the real build machinery (`rocstack build`), then validated.

One stack, two components, each compiled inside its own build stage exactly as its
recipe says: an xFormers-like extension built without HIP (toolchain none: no device
code, while its policy names it a GPU extension) and an FBGEMM-like extension linked
without tbb. Validation must fail each with its own finding, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import valtest_cases as cases
from valtest_build import VERSION, write_project
from rocstack.validate import validate_image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PREFIX = "rocstack-valtest-recipes"
STACK = "valtest-recipes"
BUILT = [c for c in cases.CASES if c.name in ("cpuonly", "tbb")]


def _recipe(case: cases.Case) -> str:
    commands = [c.format(pkg=case.package, pyinc="$(python3-config --includes)") for c in case.build]
    commands.append('rocstack-pip wheel --no-deps --no-build-isolation -w "$WHEEL_DIR" .')
    return (f"name: {case.component}\nversion: \"{VERSION}\"\n"
            f"source: {{kind: local, path: components/{case.component}}}\n"
            "arches: [gfx90a, gfx942]\n"
            "build:\n  toolchain: none\n  system_packages: [g++, python3-dev]\n"
            f"  commands: {json.dumps(commands)}\n"
            f"validation: {json.dumps(case.validation)}\n")


def _stack(project: Path) -> str:
    local = (project / "recipes" / "stacks" / "local.yaml").read_text()
    lines = []
    for line in local.splitlines():
        if line.startswith("name:"):
            line = f"name: {STACK}"
        elif line.startswith("components:"):
            line = f"components: [{', '.join(c.component for c in BUILT)}]"
        elif line.startswith("ci:"):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def recipe_image(docker_engine, tmp_path_factory):
    from rocstack.imaging.context import snapshot_project
    from rocstack.engine import buildkit_cli
    from rocstack.errors import EngineError

    try:
        buildkit_cli()
    except EngineError as exc:
        pytest.skip(exc.one_line())
    project = snapshot_project(REPO, tmp_path_factory.mktemp("project") / "rocstack")
    for case in BUILT:
        write_project(case, project / "components" / case.component)
        (project / "recipes" / "components" / f"{case.component}.yaml").write_text(_recipe(case))
    (project / "recipes" / "stacks" / f"{STACK}.yaml").write_text(_stack(project))
    env = {**os.environ, "ROCSTACK_ROOT": str(project), "ROCSTACK_IMAGE_PREFIX": PREFIX,
           "ROCSTACK_HOME": str(tmp_path_factory.mktemp("build-home"))}
    proc = subprocess.run(["rocstack", "build", "--stack", STACK, "--arch", "gfx942", "--json"],
                          capture_output=True, text=True, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)
    yield result["tags"][0]
    for tag in result["tags"]:
        try:
            docker_engine.images.remove(tag)
        except Exception:  # noqa: BLE001 - already gone
            pass


def test_recipe_built_broken_components_fail_with_their_findings(recipe_image, tmp_path):
    report = validate_image(recipe_image, tmp_path / "report").report
    checks = {c["name"]: c for c in report.checks}
    assert report.verdict == "fail" and report.exit_code == 1
    expected = {}
    for case in BUILT:
        expected.update(case.expected)
    for name, needles in expected.items():
        assert checks[name]["status"] == "fail", checks[name]
        for needle in needles:
            assert needle in checks[name]["evidence"], (needle, checks[name]["evidence"])
    others = {n: c["evidence"] for n, c in checks.items() if c["status"] in ("fail", "error") and n not in expected}
    assert not others, others
    # the manifest the build wrote is what the version check compared against
    assert checks["version:valtest-xformers"]["status"] == "pass"
    assert report.data["manifest"]["stack"] == STACK
