"""Run every check in order and collect one JSON document.

Order: static audit, Python, correctness, performance. GPU checks are always listed:
with no GPU they are ``skip`` with the reason, so a report never hides what was not run.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone

from rocstack_validation import SUITE_SCHEMA, __version__, gpu as gpu_mod
from rocstack_validation import aot_checks, perf_checks, pytest_checks, python_checks
from rocstack_validation.audit_checks import check_audit
from rocstack_validation.results import CheckResult, Outcome, run_check

KERNEL_COMPONENTS = {"rocstack-kernels", "rocstack_kernels"}


def _recipe_checks(context) -> list[CheckResult]:
    out = []
    for component in context.components:
        if component.recipe_error:
            error = component.recipe_error
            out.append(run_check(f"recipe:{component.name}", "python",
                                 lambda e=error: Outcome("error", f"recipe unavailable, its policy cannot be applied: {e}"),
                                 component.name))
    return out


def _audit(context) -> list[CheckResult]:
    out = []
    for c in context.components:
        out.append(run_check(f"audit:{c.name}", "audit", lambda c=c: check_audit(c, context), c.name))
        for manifest in aot_checks.aot_manifests(c, context.sysroot):
            out.append(run_check(f"aot:{c.name}", "audit", lambda m=manifest: aot_checks.check_aot(m, context.arches), c.name))
    return out


def _python(context, gpu) -> list[CheckResult]:
    out = []
    for c in context.components:
        out.append(run_check(f"import:{c.name}", "python", lambda c=c: python_checks.check_imports(c), c.name))
        out.append(run_check(f"version:{c.name}", "python", lambda c=c: python_checks.check_version(c), c.name))
    out.append(run_check("torch-variant", "python", lambda: python_checks.check_torch_variant(context)))
    out.append(run_check("gpu-arch", "python", lambda: python_checks.check_gpu_arch(context, gpu)))
    return out


def _pytest_pair(name: str, component: str | None, body, gpu) -> list[CheckResult]:
    """With a GPU: one GPU run. Without: the interpreter run plus the GPU run as skipped."""
    if gpu.available:
        return [run_check(f"{name}[gpu]", "correctness", lambda: body(False), component)]
    return [
        run_check(f"{name}[interpreter]", "correctness", lambda: body(True), component),
        run_check(f"{name}[gpu]", "correctness", lambda: pytest_checks.gpu_skip(gpu), component),
    ]


def _selections(component) -> list[str]:
    """A component's recipe pytest selections; the kernel package's own tests when its recipe names none."""
    selections = list(component.policy.pytest)
    if not selections and component.name in KERNEL_COMPONENTS:
        selections = [pytest_checks.KERNEL_TESTS]
    return selections


def _correctness(context, gpu) -> list[CheckResult]:
    out = []
    for c in context.components:
        selections = _selections(c)
        for index, selection in enumerate(selections):
            root = context.project_root

            def body(interp, selection=selection, root=root):
                if root is None:
                    return Outcome("error", "project tree not found in the image: cannot run the recipe's pytest selection")
                return pytest_checks.pytest_outcome(selection, root, interp)

            suffix = f"#{index + 1}" if len(selections) > 1 else ""
            out += _pytest_pair(f"pytest:{c.name}{suffix}", c.name, body, gpu)
    return out


def _performance(context, gpu) -> tuple[list[CheckResult], dict | None]:
    wanted = perf_checks.floors(context)
    if not wanted:
        return [], None
    out, bench, bench_error = [], None, None
    mine = [f for f in wanted if gpu.available and f[1].split(":")[0] == gpu.arch]
    if mine:
        start = time.monotonic()
        try:
            bench = perf_checks.run_benchmarks([f[2] for f in mine])
        except Exception as exc:  # the harness's failure is each floor's error, with the cause
            bench_error = str(exc)
        out.append(CheckResult("benchmarks", "performance", "pass" if bench else "error",
                               "benchmark harness ran" if bench else f"benchmark harness failed: {bench_error}",
                               time.monotonic() - start))
    for component, arch, metric, floor in wanted:
        name = f"perf:{component}:{metric}@{arch}"
        if not gpu.available:
            body = lambda: perf_checks.no_gpu_outcome(gpu)
        elif arch.split(":")[0] != gpu.arch:
            body = lambda arch=arch: perf_checks.wrong_arch_outcome(arch, gpu)
        elif bench is None:
            body = lambda: Outcome("error", f"no benchmark data: {bench_error}")
        else:
            body = lambda m=metric, f=floor, a=arch: perf_checks.judge_floor(m, f, bench["metrics"], a)
        out.append(run_check(name, "performance", body, component))
    return out, bench


def run_suite(context) -> dict:
    started = datetime.now(timezone.utc)
    start = time.monotonic()
    gpu = gpu_mod.detect()
    checks = _recipe_checks(context) + _audit(context) + _python(context, gpu) + _correctness(context, gpu)
    perf, bench = _performance(context, gpu)
    checks += perf
    return {
        "schema": SUITE_SCHEMA,
        "suite_version": __version__,
        "mode": context.mode,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - start, 3),
        "stack": context.stack_name,
        "arches": context.arches,
        "manifest": context.manifest,
        "notes": context.notes,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "gpu": gpu.to_json(),
        },
        "checks": [c.to_json() for c in checks],
        "benchmarks": bench,
    }
