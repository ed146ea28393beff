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
