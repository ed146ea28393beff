"""Validation fails each deliberately broken image with the precise finding, and passes a healthy one.

Each case reproduces a failure users hit (shared/reference/upstream-builds.md); see
valtest_cases.py for how each library is compiled. The images run through the real
path: Docker engine, the suite installed in the image, the reports written to disk.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

import valtest_cases as cases
from valtest_build import build_case
from rocstack.validate import validate_image

pytestmark = pytest.mark.slow


def _validate(client, runtime, case, tmp_path):
    tag = build_case(client, case, runtime)
    outcome = validate_image(tag, tmp_path / "report")
    return tag, outcome


def _by_name(report):
    return {c["name"]: c for c in report.checks}


def _push_view(client, tag):
    """What `rocstack push` concludes from the report validate kept under $ROCSTACK_HOME."""
    from rocstack.registry.local_image import find_report, inspect_image

    return find_report(inspect_image(client, tag))


@pytest.mark.parametrize("case", cases.CASES, ids=[c.name for c in cases.CASES])
def test_broken_image_fails_with_the_precise_finding(docker_engine, valtest_runtime, case, tmp_path):
    tag, outcome = _validate(docker_engine, valtest_runtime, case, tmp_path)
    report = outcome.report
    checks = _by_name(report)
    assert report.verdict == "fail", json.dumps(report.checks, indent=1)
    assert report.exit_code == 1
    for name, needles in case.expected.items():
        assert checks[name]["status"] == "fail", checks[name]
        for needle in needles:
            assert needle in checks[name]["evidence"], (needle, checks[name]["evidence"])
    # precise: nothing else fails or errors, so the report points at the one real cause
    others = {n: c["evidence"] for n, c in checks.items() if c["status"] in ("fail", "error") and n not in case.expected}
    assert not others, others
    stored = json.loads((outcome.report_dir / "report.json").read_text())
    assert stored["schema"] == "rocstack.validation/v1" and stored["verdict"] == "fail"
    assert stored["image"]["id"] == docker_engine.images.get(tag).id
    junit = ET.parse(outcome.report_dir / "junit.xml").getroot()
    assert int(junit.get("failures")) == len(case.expected)
    lookup = _push_view(client=docker_engine, tag=tag)
    assert lookup.problem and lookup.problem.startswith("validation verdict fail") and next(iter(case.expected)) in lookup.problem


def test_healthy_image_passes_and_skips_gpu_checks_with_the_reason(docker_engine, valtest_runtime, tmp_path):
    tag, outcome = _validate(docker_engine, valtest_runtime, cases.GOOD, tmp_path)
    report = outcome.report
    checks = _by_name(report)
    assert report.verdict == "pass", json.dumps(report.checks, indent=1)
    assert report.exit_code == 0
    for name in ("audit:valtest-good", "import:valtest-good", "version:valtest-good", "torch-variant",
                 "pytest:valtest-good[interpreter]"):
        assert checks[name]["status"] == "pass", checks[name]
    assert "1 passed" in checks["pytest:valtest-good[interpreter]"]["evidence"]
    # no GPU here: every GPU check is listed as skipped, with why, never as passed
    for name in ("gpu-arch", "pytest:valtest-good[gpu]", "perf:valtest-good:valtest_copy_gbps@gfx942"):
        assert checks[name]["status"] == "skip", checks[name]
        assert "no GPU" in checks[name]["evidence"]
    image_id = docker_engine.images.get(tag).id
    assert outcome.home_copy is not None and image_id.split(":")[1] in str(outcome.home_copy)
    assert json.loads(outcome.home_copy.read_text())["image"]["id"] == image_id
    assert _push_view(docker_engine, tag).problem is None  # push accepts it as validated
    html = (outcome.report_dir / "report.html").read_text()
    assert "valtest_copy_gbps" in html and "<table>" in html
