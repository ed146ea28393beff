"""Performance: the kernel benchmarks, judged against the recipes' per-arch floors.

A recipe says ``perf: {gfx942: {rms_norm_gbps: 3000}}``. On a GPU we run the kernel
package's benchmark harness once, read the metrics from its JSON, and compare each
floor of the device's arch. Without a GPU every floor is listed as skipped, with why.
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
DEFAULT_BENCH = "{python} -m rocstack_kernels.bench --json {json}"
BENCH_TIMEOUT_S = 1800


def floors(context) -> list[tuple[str, str, str, float]]:
    """(component, arch, metric, floor) for every floor declared by the stack's components."""
    out = []
    for component in context.components:
        for arch, metrics in component.policy.perf.items():
            for metric, floor in metrics.items():
                out.append((component.name, arch, metric, float(floor)))
    return out


def run_benchmarks() -> dict:
    """Run the harness once; its JSON must carry ``metrics: {name: value}``."""
    with tempfile.TemporaryDirectory(prefix="rocstack-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        template = os.environ.get(BENCH_ENV, DEFAULT_BENCH)
        argv = [part.format(python=sys.executable, json=out) for part in shlex.split(template)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise RuntimeError(f"benchmark harness failed ({' '.join(argv[:4])}...): {tail[0]}")
        data = json.loads(out.read_text())
    if not isinstance(data.get("metrics"), dict):
        raise RuntimeError("benchmark JSON has no 'metrics' mapping")
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
