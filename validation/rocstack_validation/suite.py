"""Run every check in order and collect one JSON document.

Order: static audit, Python, correctness, performance. GPU checks are always listed:
with no GPU they are ``skip`` with the reason, so a report never hides what was not run.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from rocstack_validation import SUITE_SCHEMA, __version__, gpu as gpu_mod
from rocstack_validation import aot_checks, perf_checks, probe, pytest_checks, python_checks, recipe_checks
from rocstack_validation import native_checks, toolchain_checks
from rocstack_validation.audit_checks import check_audit
from rocstack_validation.context import component_env
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


def _native(context) -> list[CheckResult]:
    """Resources and run-time compilers of the components; the stack's toolchain; the distribution's
    ROCm libraries (declared vs delivered, inside an image only: a host's packages are not the image's)."""
    out = []
    for c in context.components:
        if c.policy.resources is not None:
            out.append(run_check(f"resources:{c.name}", "audit", lambda c=c: native_checks.check_resources(c, context), c.name))
        if c.policy.jit is not None:
            out.append(run_check(f"jit:{c.name}", "audit", lambda c=c: toolchain_checks.check_jit(c, context), c.name))
    if getattr(context.stack, "toolchain", None) is not None:
        out.append(run_check("toolchain", "audit", lambda: toolchain_checks.check_toolchain(context)))
    if context.mode == "image":
        for package in toolchain_checks.rocm_packages(context.sysroot):
            out.append(run_check(f"dpkg:{package.name}", "audit",
                                 lambda p=package: toolchain_checks.check_package(p, context), package.name))
    return out


def _programs(context, gpu) -> list[CheckResult]:
    return [run_check(f"program:{c.name}:{program.name}", "correctness",
                      lambda c=c, p=program: native_checks.check_program(c, p, gpu), c.name)
            for c in context.components for program in c.policy.programs]


def _python(context, gpu) -> list[CheckResult]:
    out = []
    for c in context.components:
        out.append(run_check(f"import:{c.name}", "python", lambda c=c: python_checks.check_imports(c), c.name))
        out.append(run_check(f"version:{c.name}", "python", lambda c=c: python_checks.check_version(c), c.name))
        for declared in c.policy.python_checks:
            out.append(run_check(f"python:{c.name}:{declared.name}", "python",
                                 lambda c=c, d=declared: recipe_checks.check_declared(c, d, gpu), c.name))
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


def _run_selection(root: Path | None, component, selection: str, interpreter: bool) -> Outcome:
    if root is None:
        return Outcome("error", "project tree not found in the image: cannot run the recipe's pytest selection")
    return pytest_checks.pytest_outcome(selection, root, interpreter, component_env(component))


def _numbered(name: str, index: int, count: int) -> str:
    return f"{name}#{index + 1}" if count > 1 else name


def _correctness(context, gpu) -> list[CheckResult]:
    out = []
    for c in context.components:
        for manifest in aot_checks.aot_manifests(c, getattr(context, "sysroot", "/")):  # zero compiles per AOT kernel
            build = str(manifest.parent)
            out.append(run_check(f"no-jit:{c.name}", "correctness", lambda b=build: probe.check_no_jit(b, gpu), c.name))
        selections = _selections(c)
        for index, selection in enumerate(selections):
            body = lambda interp, c=c, selection=selection: _run_selection(context.project_root, c, selection, interp)
            out += _pytest_pair(_numbered(f"pytest:{c.name}", index, len(selections)), c.name, body, gpu)
        upstream = list(c.policy.pytest_gpu)
        root = context.project_root or Path("/")  # upstream suites are named by absolute paths in the image
        for index, selection in enumerate(upstream):
            name = _numbered(f"pytest:{c.name}", index, len(upstream)) + "[gpu-upstream]"
            if gpu.available:
                body = lambda c=c, selection=selection, root=root: _run_selection(root, c, selection, False)
            else:
                body = lambda selection=selection, root=root: pytest_checks.upstream_gpu_skip(gpu, selection, root)
            out.append(run_check(name, "correctness", body, c.name))
    return out


HARNESS = None  # key of the kernel harness's data among the benchmark sources


def _benchmark_run(name: str, component: str | None, run) -> tuple[CheckResult, dict | None, str | None]:
    """Run one benchmark; its failure becomes this check's error and each of its floors' evidence."""
    start = time.monotonic()
    try:
        data, error = run(), None
    except Exception as exc:  # a broken benchmark must not hide the other checks
        data, error = None, str(exc)
    evidence = (f"ran: {len(data['metrics'])} metrics" if data else f"failed: {error}")
    return CheckResult(name, "performance", "pass" if data else "error", f"{name} {evidence}",
                       time.monotonic() - start, component), data, error


def _performance(context, gpu) -> tuple[list[CheckResult], dict | None]:
    """Benchmarks (the recipes' own commands; the kernel harness for floors without one), then each floor."""
    wanted = perf_checks.floors(context)
    own = {c.name: c for c in context.components if c.policy.benchmark}
    if not wanted and not own:
        return [], None
    out, sources = [], {}
    on_device = lambda arch: gpu.available and arch.split(":")[0] == gpu.arch
    harness_metrics = [m for comp, arch, m, _ in wanted if comp not in own and on_device(arch)]
    if harness_metrics:
        check, data, error = _benchmark_run("benchmarks", None, lambda: perf_checks.run_benchmarks(harness_metrics))
        out.append(check)
        sources[HARNESS] = (data, error)
    for name, c in own.items():
        if not gpu.available:
            out.append(run_check(f"benchmark:{name}", "performance", lambda: perf_checks.no_gpu_outcome(gpu), name))
            continue
        run = lambda c=c: perf_checks.run_component_benchmark(c.policy.benchmark, context.project_root, component_env(c))
        check, data, error = _benchmark_run(f"benchmark:{name}", name, run)
        out.append(check)
        sources[name] = (data, error)
    for component, arch, metric, floor in wanted:
        if not gpu.available:
            body = lambda: perf_checks.no_gpu_outcome(gpu)
        elif not on_device(arch):
            body = lambda arch=arch: perf_checks.wrong_arch_outcome(arch, gpu)
        else:
            data, error = sources[component if component in own else HARNESS]
            if data is None:
                body = lambda error=error: Outcome("error", f"no benchmark data: {error}")
            else:
                body = lambda m=metric, f=floor, a=arch, d=data: perf_checks.judge_floor(m, f, d["metrics"], a)
        out.append(run_check(f"perf:{component}:{metric}@{arch}", "performance", body, component))
    return out, _benchmark_document(sources)


def _benchmark_document(sources: dict) -> dict | None:
    """The report's ``benchmarks``: the kernel harness's JSON, with each recipe benchmark's under ``components``."""
    harness = (sources.get(HARNESS) or (None, None))[0]
    components = {name: data for name, (data, _) in sources.items() if name is not HARNESS and data is not None}
    if harness is None and not components:
        return None
    document = dict(harness or {})
    if components:
        document["components"] = components
    return document


def run_suite(context) -> dict:
    started = datetime.now(timezone.utc)
    start = time.monotonic()
    gpu = gpu_mod.detect()
    checks = (_recipe_checks(context) + _audit(context) + _native(context) + _python(context, gpu)
              + _correctness(context, gpu) + _programs(context, gpu))
    perf, bench = _performance(context, gpu)
    checks += perf
    return {
        "schema": SUITE_SCHEMA,
        "suite_version": __version__,
        "mode": context.mode,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - start, 3),
        "stack": context.stack_name,
        "arches": context.arch_names,
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
