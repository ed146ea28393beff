"""The bench report's table and plot (the timing itself needs a GPU: kernels/scripts/device_check.sh)."""

import importlib.util
import json
import pathlib

import pytest
import torch

from rocstack_kernels import bench

REPORT = {
    "schema": bench.SCHEMA, "device": "NVIDIA H100 80GB HBM3", "torch": "2.11", "triton": "3.6.0",
    "date": "2026-11-21T20:00:00+00:00", "ceilings": {"copy": 3000.0, "bf16_mm": 700.0, "fp8_mm": 1250.0},
    "results": [
        {"kernel": "rms_norm", "case": "32768x4096 bf16", "impl": "rocstack", "ms": 0.2, "rate": 2700.0,
         "unit": "GB/s", "ceiling": "copy", "pct_of_ceiling": 90.0, "ratio_to_best_peer": 1.3},
        {"kernel": "rms_norm", "case": "32768x4096 bf16", "impl": "torch.compile", "ms": 0.26, "rate": 2077.0,
         "unit": "GB/s", "ceiling": "copy", "pct_of_ceiling": 69.2},
        {"kernel": "rms_norm", "case": "32768x4096 bf16", "impl": "torch eager", "error": "OutOfMemoryError: x"},
    ],
}


def test_table_shows_rates_percent_of_ceiling_ratio_and_errors():
    text = bench.format_table(REPORT)
    assert "copy 3000 GB/s" in text and "fp8 mm 1250 TFLOP/s" in text
    rocstack_line = next(line for line in text.splitlines() if "rocstack" in line)
    assert "2700" in rocstack_line and "90%" in rocstack_line and "1.30x" in rocstack_line
    assert "error: OutOfMemoryError" in text


def test_json_and_plot_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    bench.write_json(REPORT, str(tmp_path / "b.json"))
    bench.write_plot(REPORT, str(tmp_path / "b.png"))
    assert json.loads((tmp_path / "b.json").read_text())["ceilings"]["copy"] == 3000.0
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.png"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the no-GPU refusal cannot be exercised here")
def test_bench_without_a_gpu_says_so(capsys):
    assert bench.main(["--kernel", "rms_norm"]) == 2
    assert "no GPU visible" in capsys.readouterr().err


def test_rounds_alternate_order_and_a_failing_impl_is_not_rerun(monkeypatch):
    calls = []

    def fake_time(fn, rep=100):
        calls.append(fn())
        return float(len(calls))

    def broken():
        calls.append("broken")
        raise RuntimeError("no kernel image for this GPU")

    monkeypatch.setattr(bench, "time_ms", fake_time)
    times = bench.interleaved_ms({"ours": lambda: "ours", "peer": lambda: "peer", "bad": broken}, rounds=3)
    assert calls == ["ours", "peer", "broken", "peer", "ours", "ours", "peer"]
    assert times["ours"] == [1.0, 5.0, 6.0] and times["peer"] == [2.0, 4.0, 7.0]
    assert isinstance(times["bad"], RuntimeError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the no-GPU refusal cannot be exercised here")
def test_tma_sweep_without_a_gpu_says_so_and_refuses_unknown_variants(capsys):
    tma_sweep = load_script("attention_tma_sweep.py")
    assert tma_sweep.main(["--variants", "shipped"]) == 2
    assert "no GPU visible" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tma_sweep.main(["--variants", "128x128 w9"])
    assert exit_info.value.code == 2 and "unknown variant(s) 128x128 w9" in capsys.readouterr().err


SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """A module of kernels/scripts/ (tools run as files, not part of the importable package)."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_tools_live_outside_the_package():
    import rocstack_kernels

    package = pathlib.Path(rocstack_kernels.__file__).parent
    assert not [p.name for p in package.rglob("*.py") if "sweep" in p.name or p.name == "tune.py"]
    assert {"rms_norm_sweep.py", "attention_tma_sweep.py", "attention_tune.py"} <= {p.name for p in SCRIPTS.iterdir()}


def test_kernel_modules_do_not_import_the_bench():
    """The bench imports the kernels it measures; a kernel module names its bench cases only."""
    from rocstack_kernels import registry

    package = pathlib.Path(registry.__file__).parent
    for module_name in registry.KERNEL_MODULES:
        source = (package.parent / (module_name.replace(".", "/") + ".py")).read_text()
        assert "import bench" not in source and ".bench import" not in source, module_name
    cases = registry.entries()["paged_attention_decode"].bench_cases()
    assert cases and all(isinstance(case, registry.BenchCase) for case in cases)


def _row(kernel, case, impl, pct, ratio=None, ceiling="copy"):
    row = {"kernel": kernel, "case": case, "impl": impl, "ms": 1.0, "rate": pct, "unit": "GB/s",
           "ceiling": ceiling, "pct_of_ceiling": pct}
    if ratio is not None:
        row["ratio_to_best_peer"] = ratio
    return row


def test_plot_panels_group_cases_per_kernel_with_ours_and_peers():
    from rocstack_kernels import bench_plot

    report = {**REPORT, "results": [
        _row("rms_norm", "32768x1024 bf16", "rocstack", 88.0, 1.02),
        _row("rms_norm", "32768x1024 bf16", "torch.compile", 86.0),
        _row("rms_norm", "32768x1024 bf16 graph", "rocstack", 87.0, 1.0),
        _row("rms_norm", "32768x1024 bf16 graph", "torch.compile", 87.0),
        {"kernel": "rms_norm", "case": "32768x1024 bf16", "impl": "torch eager", "error": "OutOfMemoryError: x"},
        _row("flash_attention", "prefill B1 S16384 H16 d128 full bf16", "rocstack", 76.0, 0.86, "bf16_mm"),
        _row("flash_attention", "prefill B1 S16384 H16 d128 full bf16", "sdpa", 88.0, None, "bf16_mm"),
    ]}
    panels = bench_plot.panels(report)
    assert [(p.kernel, p.ceiling) for p in panels] == [("rms_norm", "copy"), ("flash_attention", "bf16_mm")]
    rms = panels[0]
    assert [r.case for r in rms.rows] == ["32768x1024", "32768x1024 graph"]  # " bf16" dropped, order kept
    assert rms.rows[0].ours == 88.0 and rms.rows[0].peers == {"torch.compile": 86.0} and rms.rows[0].ratio == 1.02
    assert panels[1].rows[0].case == "B1 S16384 H16 d128 full"
    assert [bench_plot.verdict_color(r) for r in (1.03, 1.0, 0.97)] == ["tab:green", "0.4", "tab:red"]


def test_plot_columns_balance_panel_heights_and_keep_report_order():
    from rocstack_kernels.bench_plot import Panel, Row, columns

    def panel(name, n):
        return Panel(name, "copy", [Row(str(i), 50.0) for i in range(n)])

    big, a, b, c = panel("flash", 30), panel("rms", 6), panel("rotary", 3), panel("decode", 7)
    layout = columns([a, big, b, c])
    assert [[p.kernel for p in column] for column in layout] == [["flash"], ["rms", "rotary", "decode"]]
    assert columns([a]) == [[a]]


def test_warm_up_calls_each_implementation_once_and_reports_failures(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append("sync"))

    def broken():
        calls.append("broken")
        raise RuntimeError("no kernel image")

    failed = bench._warm({"ours": lambda: calls.append("ours"), "bad": broken, "peer": lambda: calls.append("peer")})
    assert calls == ["ours", "broken", "peer", "sync"]
    assert list(failed) == ["bad"] and isinstance(failed["bad"], RuntimeError)


def test_host_integer_helpers_match_triton():
    import triton

    from rocstack_kernels.launch import cdiv, next_power_of_2

    for a in (0, 1, 15, 16, 17, 4095, 4096, 2**31 + 3):
        for b in (1, 16, 64, 1000):
            assert cdiv(a, b) == triton.cdiv(a, b)
        assert next_power_of_2(a) == triton.next_power_of_2(a)


def test_sweep_plan_is_checked_before_any_gpu_work(tmp_path, capsys):
    sweep = load_script("sweep_configs.py")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"kernel": "rms_norm", "case": "32768x1024 bf16", "variants": {"r2": {}}}]))
    assert sweep.main([str(plan), "--check"]) == 0
    assert "plan ok: 1 sweeps, 1 variants" in capsys.readouterr().out
    plan.write_text(json.dumps([{"kernel": "rms_norm", "case": "32768x999 bf16"}]))
    with pytest.raises(SystemExit, match="has no bench case '32768x999 bf16'"):
        sweep.main([str(plan), "--check"])
    plan.write_text(json.dumps([{"kernel": "rms_nrom", "case": "x"}]))
    with pytest.raises(SystemExit, match="unknown kernel rms_nrom"):
        sweep.main([str(plan), "--check"])
