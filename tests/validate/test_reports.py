"""Report assembly, verdicts, the four report formats and their atomic writing (no engine needed)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from rocstack.errors import RocstackError
from rocstack.validate import store
from rocstack.validate.report import SUITE_SCHEMA, build_report, verdict_of


def _check(name, status, category="audit", evidence="why", **details):
    out = {"name": name, "category": category, "status": status, "evidence": evidence, "duration_s": 0.25}
    if details:
        out["details"] = details
    return out


def _suite(checks, benchmarks=None):
    return {"schema": SUITE_SCHEMA, "suite_version": "0.1.0", "mode": "image", "started": "2026-11-21T20:00:00+00:00",
            "stack": "local", "arches": ["gfx942"], "manifest": None, "notes": [],
            "environment": {"gpu": {"available": False, "reason": "no /dev/kfd"}}, "checks": checks,
            "benchmarks": benchmarks}


def _report(checks, benchmarks=None):
    image = {"id": "sha256:" + "ab" * 32, "repo_digests": [], "tags": ["rocstack/local:gfx942-latest"]}
    return build_report(_suite(checks, benchmarks), target="image", image=image,
                        gpu_access={"vendor": None, "reason": "no /dev/kfd"}, duration_s=3.5)


@pytest.mark.parametrize("statuses, verdict", [
    (["pass", "skip"], "pass"), (["pass", "fail", "error"], "fail"), (["pass", "error", "skip"], "error"),
    (["skip", "skip"], "pass"), ([], "error"),
])
def test_verdict_fail_beats_error_and_skips_never_fail_or_pass_a_check(statuses, verdict):
    assert verdict_of([_check(f"c{i}", s) for i, s in enumerate(statuses)]) == verdict


def test_report_follows_the_v1_schema_and_exit_codes():
    report = _report([_check("audit:x", "pass"), _check("gpu-arch", "skip", "python", "no GPU: no /dev/kfd")])
    data = report.data
    assert data["schema"] == "rocstack.validation/v1"
    assert set(data) >= {"schema", "rocstack_version", "image", "stack", "arches", "verdict", "started", "duration_s", "checks"}
    assert data["image"]["id"].startswith("sha256:") and data["verdict"] == "pass" and report.exit_code == 0
    assert _report([_check("a", "fail")]).exit_code == 1
    assert _report([_check("a", "error")]).exit_code == 2


def test_a_suite_document_of_another_schema_is_refused():
    with pytest.raises(RocstackError, match="rebuild the image|not rocstack.validation-suite"):
        build_report({"schema": "something/v9", "checks": []}, target="image", image=None, gpu_access={}, duration_s=0)
    bad = _suite([{"name": "x", "status": "maybe", "category": "audit", "evidence": "", "duration_s": 0}])
    with pytest.raises(RocstackError, match="malformed check"):
        build_report(bad, target="image", image=None, gpu_access={}, duration_s=0)


def test_junit_maps_statuses_like_pytest():
    report = _report([_check("audit:a", "fail", evidence="[hip-fatbin] _C.so: no gfx942"), _check("import:a", "pass", "python"),
                      _check("gpu-arch", "skip", "python", "no GPU"), _check("pytest:a[gpu]", "error", "correctness")])
    root = ET.fromstring(store.render_all(report)["junit.xml"].split("\n", 1)[1])
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    failure = root.find(".//testcase[@name='audit:a']/failure")
    assert failure is not None and "no gfx942" in failure.get("message")
    assert root.find(".//testcase[@name='gpu-arch']/skipped").get("message") == "no GPU"


def test_markdown_lists_what_to_fix():
    text = store.render_all(_report([_check("audit:a", "fail", evidence="needs GLIBCXX_3.4.30 | old"),
                                     _check("import:a", "pass", "python")]))["summary.md"]
    assert "**FAIL**" in text and "## What to fix" in text and "GLIBCXX_3.4.30 \\| old" in text


def test_html_is_self_contained_with_perf_and_attention_plots():
    checks = [_check("perf:k:rms_norm_gbps@gfx942", "pass", "performance", value=3100.0, floor=3000.0),
              _check("perf:k:rope_gbps@gfx942", "fail", "performance", value=1000.0, floor=2000.0)]
    rows = []
    for s in (1024, 2048, 4096):
        case = f"prefill B{16384 // s} S{s} H16 d128 causal bf16"
        rows += [{"kernel": "flash_attention", "case": case, "impl": "rocstack", "rate": 300.0 + s / 64, "unit": "TFLOP/s"},
                 {"kernel": "flash_attention", "case": case, "impl": "sdpa", "rate": 280.0, "unit": "TFLOP/s"}]
    bench = {"metrics": {"rms_norm_gbps": 3100.0}, "results": rows}
    from rocstack.validate.plots import attention_series

    series = attention_series(bench)
    assert list(series) == ["flash_attention causal d128 vs sdpa"]
    assert [s for s, _ in series["flash_attention causal d128 vs sdpa"]] == [1024, 2048, 4096]
    assert series["flash_attention causal d128 vs sdpa"][0][1] == pytest.approx(316.0 / 280.0)
    html = store.render_all(_report(checks, bench))["report.html"]
    assert html.count("data:image/png;base64,") == 2
    assert "src='http" not in html and "<link" not in html and "<script src" not in html
    assert "rms_norm_gbps" in html


def test_html_without_benchmarks_says_why():
    html = store.render_all(_report([_check("perf:k:m@gfx942", "skip", "performance", "no GPU: no /dev/kfd")]))["report.html"]
    assert "data:image/png" not in html and "No benchmark data: no GPU: no /dev/kfd" in html


def test_report_dir_is_replaced_atomically_and_never_half_written(tmp_path, monkeypatch):
    target = tmp_path / "reports"
    store.write_report_dir(_report([_check("a", "pass")]), target)
    assert sorted(os.listdir(target)) == sorted(store.REPORT_FILES)
    first = (target / "report.json").read_text()

    def broken(_report):
        raise RuntimeError("disk full halfway")

    monkeypatch.setattr(store, "render_html", broken)
    with pytest.raises(RuntimeError):
        store.write_report_dir(_report([_check("a", "fail")]), target)
    assert (target / "report.json").read_text() == first  # the previous reports survive intact
    assert sorted(os.listdir(tmp_path)) == ["reports"]  # no temp dirs left behind


def test_report_path_that_is_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RocstackError, match="is a file"):
        store.write_report_dir(_report([_check("a", "pass")]), tmp_path / "f")


def test_home_copy_is_keyed_by_image_id(rocstack_home):
    report = _report([_check("a", "pass")])
    path = store.save_home_copy(report)
    assert path == rocstack_home / "reports" / ("ab" * 32) / "report.json"
    assert json.loads(path.read_text())["verdict"] == "pass"
    local = build_report(_suite([_check("a", "pass")]), target="local", image=None, gpu_access={}, duration_s=1)
    assert store.save_home_copy(local) is None


def test_html_lists_audit_findings_with_their_fix():
    finding = {"check": "arch-coverage", "severity": "error", "file": "xformers/_C.so",
               "message": "no code object runs on gfx942 <hipErrorNoBinaryForGpu>", "hint": "rebuild with --offload-arch=gfx942"}
    html = store.render_all(_report([_check("audit:x", "fail", findings=[finding])]))["report.html"]
    assert "1 finding(s)" in html and "rebuild with --offload-arch=gfx942" in html
    assert "&lt;hipErrorNoBinaryForGpu&gt;" in html  # escaped, never raw markup


def test_html_lists_each_recipe_benchmarks_metrics_beside_the_kernel_harness():
    from rocstack.validate.html import render_html

    benchmarks = {"results": [], "metrics": {"rms_norm_gbps": 2500.0},
                  "components": {"flash-attention-ck": {"metrics": {"flash_attn_fwd_bf16_hd128_tflops": 301.5}}}}
    page = render_html(_report([_check("benchmark:flash-attention-ck", "pass", "performance")], benchmarks))
    assert "<td>rocstack-kernels</td><td>rms_norm_gbps</td><td>2500.0</td>" in page
    assert "<td>flash-attention-ck</td><td>flash_attn_fwd_bf16_hd128_tflops</td><td>301.5</td>" in page
