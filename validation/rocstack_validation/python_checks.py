"""Python checks: components import, versions match the manifest, torch is the right variant."""

from __future__ import annotations

import subprocess
import sys

from packaging.version import InvalidVersion, Version

from rocstack_validation.context import component_env
from rocstack_validation.installed import declared_distribution, distribution, top_level_modules
from rocstack_validation import torch_arches
from rocstack_validation.results import Outcome, skip

IMPORT_TIMEOUT_S = 300


def _import_targets(component) -> tuple[list[str], list[str]]:
    policy = component.policy
    modules = list(policy.imports)
    if not modules:
        dist = distribution(component)
        modules = top_level_modules(dist) if dist else []
    # preload entries that look like modules (not library globs) are imported first,
    # exactly as users do (`import torch` before an extension that NEEDs libtorch).
    preload = [p for p in policy.preload if "/" not in p and "*" not in p and not p.endswith(".so")]
    return preload, modules


def check_imports(component) -> Outcome:
    preload, modules = _import_targets(component)
    if not modules:
        declared = declared_distribution(component)
        if declared:
            return Outcome("fail", f"distribution {declared} (the recipe's artifacts.distribution) is not installed "
                           "and the recipe lists no validation.imports: the component's wheel is missing from the image")
        return skip(f"nothing to import: recipe lists no validation.imports and no installed distribution is named {component.name}")
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
    )
    failures, done = [], []
    for module in modules:  # one interpreter per module: one failure cannot mask the next
        proc = subprocess.run(
            [sys.executable, "-c", script, *preload, module],
            capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, env=component_env(component),
        )
        if proc.returncode == 0:
            done.append(module)
        else:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            cause = lines[-1] if lines else f"exit status {proc.returncode}"
            failures.append(f"import {module} failed: {cause}")
    pre = f" (after importing {', '.join(preload)})" if preload else ""
    if failures:
        return Outcome("fail", "; ".join(failures) + pre, {"imported": done, "failed": failures})
    return Outcome("pass", f"imported {', '.join(done)}{pre}", {"imported": done})


def _same_version(expected: str, installed: str) -> tuple[bool, str]:
    try:
        want, have = Version(expected), Version(installed)
    except InvalidVersion:
        return expected == installed, ""
    if want == have:
        return True, ""
    if not want.local and want.public == have.public:  # manifest 2.13.0, wheel 2.13.0+cpu
        return True, f" (local build label +{have.local})"
    return False, ""


def check_version(component) -> Outcome:
    if component.version is None:
        return skip("no build manifest (--local): there is no recorded version to compare against")
    dist = distribution(component)
    declared = declared_distribution(component)
    if dist is None and declared:
        return Outcome("fail", f"distribution {declared} (the recipe's artifacts.distribution) is not installed, "
                       f"but the build manifest records {component.name} {component.version}: the component's wheel "
                       "is missing from the image (or the recipe names the wrong distribution)")
    if dist is None:
        return skip(f"{component.name} is not a Python distribution: its version is recorded in the manifest only")
    installed = dist.version
    same, note = _same_version(component.version, installed)
    if same:
        return Outcome("pass", f"{dist.metadata['Name']} {installed} matches the manifest ({component.version}){note}")
    return Outcome(
        "fail",
        f"{dist.metadata['Name']} {installed} is installed but the build manifest records {component.version}: "
        "the image was changed after the build, or pip replaced the component",
        {"installed": installed, "manifest": component.version},
    )


def check_torch_variant(context) -> Outcome:
    variant = context.torch_variant
    if variant is None:
        return skip(f"stack definition for {context.stack_name!r} is unavailable, so the expected torch variant is unknown")
    try:
        import torch
    except ImportError as exc:
        return Outcome("fail", f"stack {context.stack_name} expects {variant} torch but torch does not import: {exc}")
    hip, cuda = torch.version.hip, torch.version.cuda
    have = "rocm" if hip else "cuda" if cuda else "cpu"
    found = f"torch {torch.__version__} (torch.version.hip={hip}, torch.version.cuda={cuda})"
    details = {"torch": torch.__version__, "hip": hip, "cuda": cuda, "expected_variant": variant}
    expected_version = context.expected_torch_version
    if expected_version and Version(torch.__version__).public != Version(expected_version).public:
        return Outcome("fail", f"{found} but stack {context.stack_name} pins torch {expected_version}", details)
    if variant == "cpu":
        if have == "cuda" and context.mode == "local":
            # --local on an NVIDIA GPU node: the stack's CPU torch describes its images, not this node
            return skip(f"this environment has {found} (an NVIDIA GPU node); stack {context.stack_name} defines a CPU "
                        "torch for its images, so there is no variant to hold this node to", **details)
        if have != "cpu":
            return Outcome("fail", f"stack {context.stack_name} expects a CPU torch but found a {have} build: {found}", details)
        return Outcome("pass", f"stack {context.stack_name} defines a CPU torch ({expected_version}); found {found}: as expected", details)
    if have != "rocm":
        return Outcome(
            "fail",
            f"CPU-only or CUDA torch slipped in: {found}, but stack {context.stack_name} expects ROCm torch for "
            f"{', '.join(context.arch_names)}; install torch with --index-url from the ROCm index, not -f/PyPI fallback",
            details,
        )
    arch_list, source = torch_arches.arch_list(torch)
    compiled = {a.split(":")[0] for a in arch_list}
    missing = [str(a) for a in context.arches if a.processor not in compiled]
    details["arch_list"] = arch_list
    if missing:
        return Outcome(
            "fail",
            f"{found} has no kernels for {', '.join(missing)} ({source} = {', '.join(arch_list) or 'empty'}): "
            "torch ops will fail with hipErrorNoBinaryForGpu on that arch",
            details,
        )
    return Outcome("pass", f"{found}; {source} covers {', '.join(context.arch_names)}", details)


def check_gpu_arch(context, gpu) -> Outcome:
    if not gpu.available:
        return skip(f"no GPU: {gpu.reason}")
    if gpu.vendor != "amd":
        return skip(f"{gpu.name} ({gpu.arch}) is not an AMD GPU: gfx code-object coverage does not apply")
    from rocstack.arches import parse_target_id

    device = parse_target_id(gpu.target_id or gpu.arch, known_only=False)
    covered = [a for a in context.arches if a.runs_on(device)]
    if covered:
        return Outcome("pass", f"{gpu.name} is {gpu.target_id or gpu.arch}, covered by image arch {covered[0]}")
    return Outcome(
        "fail",
        f"{gpu.name} is {gpu.target_id or gpu.arch} but the image was built for {', '.join(context.arch_names)}: "
        "GPU code will fail with hipErrorNoBinaryForGpu; rebuild with --arch " + (gpu.arch or ""),
    )
