"""Validate an image rocstack did not build: static part from outside, in-image part with the image's Python.

1. the filesystem, exported through the engine (:mod:`imagefs`), only what the checks read;
2. the target arches and where they came from (:mod:`targets`);
3. the static audit of site-packages, ROCm prefixes and ROCm dpkg packages (:mod:`static`),
   with the coverage matrix;
4. TunableOp tables against the image's versions and arches (:mod:`tunableop`);
5. the in-image checks with the image's interpreter (:mod:`inimage`), or, for an image
   without Python, ``skip`` with that reason (the level is then static-only).

The result is the same ``rocstack.validation-suite/v1`` document the in-image suite writes,
plus what only this path knows (targets, versions, coverage, filesystem statistics).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from rocstack.arches import TargetID
from rocstack.contracts import SUITE_SCHEMA
from rocstack.log import Log
from rocstack.validate import tunableop
from rocstack.validate.imagefs import export_image
from rocstack.validate.inimage import MIN_PYTHON, ProbeFailed, run_in_image
from rocstack.validate.inventory import Inventory, image_env
from rocstack.validate.static import StaticAudit, run_static_audit, torch_offload_targets
from rocstack.validate.targets import TargetChoice, choose_targets

MAX_IMPORTS = 30
GPU_LIBRARIES = ("libamdhip64.so", "libtorch_hip.so", "libc10_hip.so", "libhiprtc.so", "librocblas.so", "libhipblaslt.so")
AOT_BUILD_DIRS = ("/opt/rocstack/kernels",)


def _check(name: str, category: str, status: str, evidence: str, details: dict | None = None,
           component: str | None = None, seconds: float = 0.0) -> dict:
    out = {"name": name, "category": category, "status": status, "evidence": evidence,
           "duration_s": round(seconds, 3), "component": component}
    if details:
        out["details"] = details
    return out


def _targets_check(choice: TargetChoice) -> dict:
    if not choice.targets:
        return _check("targets", "audit", "error", f"no target arch: {choice.detail}", choice.to_json())
    ignored = f" (not arches, set aside: {', '.join(choice.ignored)})" if choice.ignored else ""
    return _check("targets", "audit", "pass", f"{', '.join(choice.names)} from {choice.source}: {choice.detail}{ignored}",
                  choice.to_json())


def _tunableop_checks(inventory: Inventory, patterns: tuple[str, ...], targets: list[TargetID]) -> list[dict]:
    versions = inventory.versions()
    out = []
    for inside in tunableop.find_tables(inventory.root, patterns):
        start = time.monotonic()
        text = (inventory.root / inside.lstrip("/")).read_text(encoding="utf-8", errors="replace")
        result = tunableop.check_table(inside, text, versions, targets)
        errors = [f for f in result.findings if f.severity == "error"]
        warnings = [f for f in result.findings if f.severity == "warning"]
        if errors:
            evidence = f"{len(errors)} Validator line(s) do not match the image: " + "; ".join(f.message for f in errors)
        elif result.verified:
            evidence = f"{', '.join(result.verified)} match the image ({result.results} tuned solutions)"
            evidence += "; " + "; ".join(f.message for f in warnings) if warnings else ""
        else:
            evidence = "no Validator line could be checked: " + ("; ".join(f.message for f in warnings) or "none present")
        details = {"file": inside, "results": result.results, "verified": result.verified,
                   "validators": [{"line": v.number, "key": v.key, "value": v.value} for v in result.validators],
                   "findings": [f.to_json() for f in result.findings]}
        out.append(_check(f"tunableop:{inside}", "audit", result.status, evidence, details,
                          seconds=time.monotonic() - start))
    return out


def _import_modules(inventory: Inventory, static: StaticAudit, coverage_rows: list) -> list[str]:
    """Modules to import: torch, and each Python distribution whose libraries use the GPU runtime or carry device code."""
    gpu_groups = set()
    for check in static.checks:
        group = (check.get("details") or {}).get("group") or {}
        if group.get("kind") == "python":
            gpu_groups.add(group["name"])
    modules = ["torch"] if any(d.key == "torch" for d in inventory.distributions) else []
    for dist in inventory.distributions:
        if f"{dist.name} {dist.version}" not in gpu_groups:
            continue
        for entry in dist.files:
            parts = entry.split("/")
            if len(parts) == 2 and parts[1] == "__init__.py" and not parts[0].endswith((".dist-info", ".data")):
                name = parts[0]
            elif len(parts) == 1 and ".cpython-" in parts[0] and parts[0].endswith(".so"):
                name = parts[0].split(".", 1)[0]
            else:
                continue
            if name.isidentifier() and name not in modules:
                modules.append(name)
    return modules[:MAX_IMPORTS]


def _spec(inventory: Inventory, choice: TargetChoice, imports: list[str],
          torch_delivered: tuple[list[str], str] | None) -> dict:
    torch = next((d for d in inventory.distributions if d.key == "torch"), None)
    builds = [d for d in AOT_BUILD_DIRS if (inventory.root / d.lstrip("/") / "manifest.json").is_file()]
    facts = {"version": torch.version, "site": torch.site} if torch else None
    if facts and torch_delivered:
        facts["offload_targets"], facts["offload_library"] = torch_delivered
    return {"targets": choice.names, "imports": imports, "aot_builds": builds, "torch": facts}


def _no_python_checks(reason: str) -> list[dict]:
    """The in-image checks an image without a usable Python cannot run: listed, with why."""
    return [_check("gpu-arch", "python", "skip", reason), _check("gpu-smoke", "correctness", "skip", reason)]


def _in_image(client, image_id: str, inventory: Inventory, choice: TargetChoice, static: StaticAudit, gpu,
              log: Log, torch_delivered: tuple[list[str], str] | None) -> tuple[list[dict], dict]:
    interpreter = inventory.interpreter
    if interpreter is None:
        reason = "the image has no Python on its PATH: in-image checks (imports, torch, GPU) were not run, static part only"
        log.step(reason)
        return [_check("python", "python", "skip", reason), *_no_python_checks(reason)], {"gpu": None}
    if interpreter.version and tuple(int(p) for p in interpreter.version.split(".")) < MIN_PYTHON:
        reason = f"the image's Python {interpreter.real} is {interpreter.version}, older than 3.9: in-image checks not run"
        return [_check("python", "python", "skip", reason), *_no_python_checks(reason)], {"gpu": None}
    spec = _spec(inventory, choice, _import_modules(inventory, static, []), torch_delivered)
    start = time.monotonic()
    try:
        probe = run_in_image(client, image_id, interpreter.path, inventory.env, spec, gpu)
    except ProbeFailed as exc:
        log.warn(str(exc))
        return [_check("python", "python", "error", str(exc), {"interpreter": interpreter.to_json()},
                       seconds=time.monotonic() - start), *_no_python_checks(f"not run: {exc}")], {"gpu": None}
    env = probe.get("environment") or {}
    started = _check("python", "python", "pass",
                     f"the image's Python {interpreter.path} ({env.get('python')}) ran the in-image checks "
                     "with the suite mounted read-only", {"interpreter": interpreter.to_json(), "spec": spec},
                     seconds=time.monotonic() - start)
    return [started, *probe.get("checks", [])], env


def run_any_image(client, image_id: str, reference: str, config: dict, labels: dict, cli_targets: list[TargetID] | None,
                  gpu, log: Log) -> tuple[dict, dict]:
    """(suite-schema document, extra report fields) for an image rocstack did not build."""
    started = datetime.now(timezone.utc)
    start = time.monotonic()
    env_patterns = tunableop.name_patterns(image_env(config), config.get("WorkingDir"))
    with log.section("Image filesystem"):
        tree = export_image(client, image_id, reference, env_patterns)
        stats = tree.stats
        log.step(f"streamed {stats.streamed_bytes / 2**20:.0f} MiB, kept {stats.files} files "
                 f"({stats.file_bytes / 2**20:.0f} MiB) and {stats.symlinks} symlinks")
    try:
        inventory = Inventory.read(tree.root, config)
        with log.section("Target arches"):
            # what torch's own HIP library carries: the targets when nothing else names them, and the
            # delivered side of torch's declared-vs-delivered check in the image
            torch_delivered = torch_offload_targets(inventory)
            torch_arches = None
            if not cli_targets and not any(k in inventory.env for k in ("PYTORCH_ROCM_ARCH", "GPU_ARCHS", "GPU_TARGETS",
                                                                        "AMDGPU_TARGETS", "HIP_ARCHITECTURES")):
                torch_arches = torch_delivered
            declared = {p.name: p.gpu_arches for p in inventory.packages if p.gpu_arches}
            choice = choose_targets(cli=cli_targets, labels=labels, env=inventory.env, torch_arches=torch_arches,
                                    dpkg_declared=declared)
            log.step(f"targets: {', '.join(choice.names) or 'none'} ({choice.source})")
        with log.section("Static audit"):
            static = run_static_audit(inventory, choice.targets)
            log.step(f"{len(static.groups)} component(s) audited")
        checks = [_targets_check(choice), *static.checks, *_tunableop_checks(inventory, env_patterns, choice.targets)]
        with log.section("In-image checks"):
            in_image, environment = _in_image(client, image_id, inventory, choice, static, gpu, log, torch_delivered)
        versions = {k: (v.to_json() if v else None) for k, v in inventory.versions().items()}
        python = inventory.interpreter.to_json() if inventory.interpreter else None
    finally:
        tree.cleanup()
    suite = {"schema": SUITE_SCHEMA, "suite_version": None, "mode": "any-image",
             "started": started.isoformat(timespec="seconds"), "duration_s": round(time.monotonic() - start, 3),
             "stack": None, "arches": choice.names, "manifest": None,
             "notes": [] if python else ["the image has no Python: static part only"],
             "environment": environment, "checks": checks + in_image, "benchmarks": None}
    extra = {"mode": "any-image", "targets": choice.to_json(), "coverage": static.coverage, "declared": static.declared,
             "versions": versions, "python": python, "filesystem": stats.to_json(),
             "audited": [g.to_json() for g in static.groups]}
    return suite, extra
