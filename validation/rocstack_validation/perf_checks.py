"""Performance: the kernel benchmarks, judged against the recipes' per-arch floors.

A recipe says ``perf: {gfx942: {rms_norm_gbps: 3000}}``. On a GPU we run the recipe's own
``validation.benchmark`` command (flash-attention's TFLOPS table), or for our kernels the
kernel package's benchmark harness once, read the metrics from their JSON, and compare
each floor of the device's arch. Without a GPU every floor is listed as skipped, with why.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from rocstack_validation.results import Outcome, skip

BENCH_ENV = "ROCSTACK_VALIDATE_BENCH"  # override the harness command; {json} is the output file
DEFAULT_BENCH = "{python} -m rocstack_kernels.bench --kernel {kernels} --json {json}"
METRIC_SUFFIXES = ("_gbps", "_tflops", "_pct_of_ceiling", "_vs_best_peer")
BENCH_TIMEOUT_S = 1800


def floors(context) -> list[tuple[str, str, str, float]]:
    """(component, arch, metric, floor) for every floor declared by the stack's components."""
    out = []
    for component in context.components:
        for arch, metrics in component.policy.perf.items():
            for metric, floor in metrics.items():
                out.append((component.name, arch, metric, float(floor)))
    return out


UNIT_SLUG = {"GB/s": "gbps", "TFLOP/s": "tflops"}


def metrics_from_results(results: list[dict]) -> dict[str, float]:
    """Named metrics from ``rocstack.kernels-bench/v1`` rows (our kernel's rows, impl "rocstack").

    Per kernel, the worst case over its bench cases (a floor must hold at every size):
    ``<kernel>_gbps`` / ``<kernel>_tflops``, ``<kernel>_pct_of_ceiling``, ``<kernel>_vs_best_peer``;
    and per case the same with ``<kernel>[<case>]_...``.
    """
    metrics: dict[str, float] = {}

    def put(name: str, value: float) -> None:
        metrics[name] = min(value, metrics.get(name, value))

    for row in results:
        if row.get("impl") != "rocstack" or "rate" not in row:
            continue
        unit = UNIT_SLUG.get(row.get("unit"), "rate")
        for key in (row["kernel"], f"{row['kernel']}[{row.get('case')}]"):
            put(f"{key}_{unit}", float(row["rate"]))
            if row.get("pct_of_ceiling") is not None:
                put(f"{key}_pct_of_ceiling", float(row["pct_of_ceiling"]))
            if row.get("ratio_to_best_peer") is not None:
                put(f"{key}_vs_best_peer", float(row["ratio_to_best_peer"]))
    return metrics


def kernels_of(metrics: list[str]) -> list[str]:
    """``rms_norm[32768x4096 bf16]_gbps`` -> ``rms_norm``: only the kernels a floor names are benchmarked."""
    out = []
    for metric in metrics:
        name = metric.split("[", 1)[0]
        for suffix in METRIC_SUFFIXES:
            name = name.removesuffix(suffix)
        out.append(name)
    return list(dict.fromkeys(out))


def _run_json_command(template: str, what: str, env: dict[str, str] | None = None, **fields) -> dict:
    """Run a benchmark command whose ``{json}`` field names its output file; return that JSON."""
    with tempfile.TemporaryDirectory(prefix="rocstack-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        argv = [part.format(python=sys.executable, json=out, **fields) for part in shlex.split(template)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{what} did not finish in {BENCH_TIMEOUT_S} s ({' '.join(argv[:4])}...)") from None
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise RuntimeError(f"{what} failed ({' '.join(argv[:4])}...): {tail[0]}")
        try:
            data = json.loads(out.read_text())
        except FileNotFoundError:
            raise RuntimeError(f"{what} exited 0 but wrote no JSON to the {{json}} file ({' '.join(argv[:4])}...)") from None
        except ValueError as exc:
            raise RuntimeError(f"{what} wrote invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RuntimeError(f"{what} wrote JSON that is not an object")
    return data


def run_benchmarks(metrics: list[str]) -> dict:
    """Run the kernel harness once; return its JSON with ``metrics`` derived from its result rows."""
    template = os.environ.get(BENCH_ENV, DEFAULT_BENCH)
    data = _run_json_command(template, "benchmark harness", kernels=",".join(kernels_of(metrics)))
    if not isinstance(data.get("results"), list):
        raise RuntimeError("benchmark JSON has no 'results' list (expected rocstack.kernels-bench/v1)")
    data["metrics"] = metrics_from_results(data["results"])
    return data


def run_component_benchmark(command: str, root: Path | None, env: dict[str, str]) -> dict:
    """Run a recipe's ``validation.benchmark``; its JSON must carry ``{"metrics": {name: number}}``."""
    if root is None and "{root}" in command:
        raise RuntimeError("project tree not found in the image: the benchmark command needs {root}")
    data = _run_json_command(command, "component benchmark", env, root=root)
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
        raise RuntimeError("benchmark JSON has no 'metrics' object of name -> number (the recipe's benchmark contract)")
    return data


def judge_floor(metric: str, floor: float, metrics: dict, arch: str) -> Outcome:
    if metric not in metrics:
        return Outcome("error", f"the benchmark harness did not report {metric} (it reported: {', '.join(sorted(metrics)) or 'nothing'})")
    value = float(metrics[metric])
    details = {"metric": metric, "value": value, "floor": floor, "arch": arch}
    ratio = value / floor if floor else float("inf")
    if value >= floor:
        return Outcome("pass", f"{metric} = {value:.4g} >= floor {floor:.4g} on {arch} ({ratio:.0%} of floor)", details)
    return Outcome("fail", f"{metric} = {value:.4g} < floor {floor:.4g} on {arch} ({ratio:.0%} of floor): slower than the recipe requires", details)


def no_gpu_outcome(gpu) -> Outcome:
    return skip(f"no GPU: {gpu.reason}")


def wrong_arch_outcome(arch: str, gpu) -> Outcome:
    return skip(f"floor is for {arch} but the GPU is {gpu.name} ({gpu.arch})")
