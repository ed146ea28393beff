"""The image's device compiler, JIT-compiling libraries, and the distribution's ROCm libraries.

- ``toolchain``: a stack that ships a device compiler (``toolchain:`` in the stack) is held to
  it: the compiler is in the image, its declared offload-arch list has every image arch, and a
  one-kernel compile per image arch gives a code object for that arch (read back by the audit).
- ``jit:<component>`` (``validation.jit``): a library that compiles device code at run time
  (FlashInfer+ROCm) passes when its ahead-of-time outputs cover every image arch, or else when
  the image's compiler targets every image arch - the same one-kernel probe.
- ``dpkg:<package>``: declared vs delivered for every ROCm package dpkg installed with an
  ``X-Rocm-Gpu-Architecture`` field (Debian's librccl1, librocblas5, ...): the arches it
  declares and the device code its libraries carry (per bundle, and per kernel-database file)
  must include every image arch, or the report names the library and the arch it lacks.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from rocstack_validation.results import Outcome, skip

PROBE_SOURCE = '#include <hip/hip_runtime.h>\n__global__ void rocstack_probe(float *p) { p[threadIdx.x] = 1.0f; }\n'
PROBE_TIMEOUT_S = 300
MAX_LISTED = 8


def probe_compile(compiler: str, arches: list, workdir: str) -> tuple[dict[str, str], dict[str, str]]:
    """Compile the one-kernel probe for each arch; (arch -> target IDs found in the object, arch -> error)."""
    from rocstack.audit import run_audit

    source = os.path.join(workdir, "probe.hip")
    Path(source).write_text(PROBE_SOURCE)
    found, errors = {}, {}
    for target in arches:
        out = os.path.join(workdir, f"probe-{target.processor}.o")
        argv = [compiler, "-x", "hip", f"--offload-arch={target}", "--offload-device-only", "--no-gpu-bundle-output",
                "-c", source, "-o", out]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors[str(target)] = str(exc)
            continue
        if proc.returncode != 0 or not os.path.isfile(out):
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
            errors[str(target)] = f"{' '.join(argv)} exited {proc.returncode}: " + " | ".join(lines[-3:])
            continue
        report = run_audit([out], targets=[])
        found[str(target)] = ", ".join(sorted({o.target_id for f in report.files for o in f.code_objects if o.target_id})) or "nothing"
    return found, errors


def _probe_outcome(compiler_path: str, arches: list, declared: list[str] | None, what: str) -> Outcome:
    missing_static = [str(t) for t in arches if declared is not None and t.processor not in declared]
    with tempfile.TemporaryDirectory(prefix="rocstack-probe-") as tmp:
        found, errors = probe_compile(compiler_path, arches, tmp)
    wrong = {a: got for a, got in found.items() if a.split(":")[0] not in {g.strip().split(":")[0] for g in got.split(",")}}
    details = {"compiler": compiler_path, "declared_offload_arches": declared, "compiled": found, "errors": errors}
    problems = []
    if missing_static:
        problems.append(f"its declared offload-arch list lacks {', '.join(missing_static)}")
    problems += [f"{arch}: {error}" for arch, error in errors.items()]
    problems += [f"{arch}: the probe's code object is for {got}" for arch, got in wrong.items()]
    if problems:
        return Outcome("fail", f"{what}: {compiler_path} does not target every image arch: " + "; ".join(problems[:MAX_LISTED]), details)
    return Outcome("pass", f"{what}: {compiler_path} compiled a one-kernel probe for "
                           + ", ".join(f"{a} (code object {found[a]})" for a in found), details)


def check_toolchain(context) -> Outcome:
    toolchain = getattr(context.stack, "toolchain", None)
    compiler = shutil.which("hipcc")
    if compiler is None:
        return Outcome("fail", f"stack {context.stack_name} declares the toolchain {toolchain.name}, but the image has no hipcc")
    return _probe_outcome(compiler, context.arches, list(toolchain.offload_arches), f"toolchain {toolchain.name}")


def _aot_files(patterns: list[str]) -> list[str]:
    site = sysconfig.get_paths()["purelib"]
    files = []
    for pattern in patterns:
        files += [p for p in glob.glob(os.path.join(site, pattern), recursive=True) if os.path.isfile(p)]
    return sorted(set(files))


def check_jit(component, context) -> Outcome:
    """AOT outputs that cover every image arch, else a compiler in the image that targets them all."""
    from rocstack.audit import run_audit

    jit = component.policy.jit
    aot = _aot_files(jit.aot)
    uncovered = "no AOT outputs"
    if aot:
        report = run_audit(aot, targets=list(context.arches), sysroot=context.sysroot)
        lacking = [f for f in report.findings if f.check == "arch-coverage" and f.severity == "error"]
        if not lacking:
            return Outcome("pass", f"{component.name}'s {len(aot)} AOT output(s) cover {', '.join(context.arch_names)}: "
                                   "no run-time compile is needed for the image arches", {"aot": aot[:MAX_LISTED]})
        uncovered = f"{len(lacking)} AOT output(s) lack an image arch ({os.path.basename(lacking[0].file)}: {lacking[0].message[:160]})"
    compiler = shutil.which(jit.compiler)
    if compiler is None:
        return Outcome("fail", f"{component.name} compiles device code at run time ({jit.arch_env or 'its arch list'}), "
                               f"but the image has no {jit.compiler} and {uncovered}: the first call on "
                               f"{', '.join(context.arch_names)} fails", {"aot": aot[:MAX_LISTED]})
    declared = list(context.stack.toolchain.offload_arches) if getattr(context.stack, "toolchain", None) else None
    return _probe_outcome(compiler, context.arches, declared, f"{component.name} JIT ({uncovered})")


def rocm_packages(sysroot: str) -> list:
    """Installed dpkg packages that declare X-Rocm-Gpu-Architecture (read from the dpkg database)."""
    from rocstack.validate.inventory import dpkg_packages

    return [p for p in dpkg_packages(Path(sysroot)) if p.gpu_arches is not None]


def _library_files(package, sysroot: str) -> list[str]:
    out = []
    for entry in package.files:
        path = os.path.join(sysroot, entry.lstrip("/"))
        name = os.path.basename(entry)
        if (name.endswith((".so", ".co", ".hsaco")) or ".so." in name) and os.path.isfile(path) and not os.path.islink(path):
            out.append(path)
    return out


def check_package(package, context) -> Outcome:
    """The package's declaration and its device code (rocstack's coverage matrix: every bundle of a
    library, some file of a kernel database) against the image arches; the audit's own declared-vs-
    delivered findings (an arch declared but not shipped) come along."""
    from rocstack.audit import run_audit

    declared = set(package.gpu_arches or [])
    undeclared = [str(t) for t in context.arches if t.processor not in declared]
    files = _library_files(package, context.sysroot)
    label = f"{package.name} {package.version}"
    if not files:
        return skip(f"{label} installs no library or code object (declares {' '.join(sorted(declared)) or 'nothing'})")
    report = run_audit(files, targets=list(context.arches), sysroot=context.sysroot)
    matrix = report.coverage
    lacking: dict[str, list[str]] = {}
    carried: set[str] = set()
    for row, cells in zip(matrix.rows if matrix else [], matrix.cells if matrix else []):
        carried |= {t.split(":")[0] for u in row.units for t in u.targets}
        for arch, cell in cells.items():
            if cell.status != "covered":
                name = os.path.basename(row.name.rstrip("/")) + (" (some bundles)" if cell.status == "partial" else "")
                lacking.setdefault(arch, []).append(name)
    false_claims = [f.message for f in report.findings if f.check == "declared-arches" and f.severity == "error"]
    details = {"package": package.name, "version": package.version, "declared": sorted(declared),
               "delivered": sorted(carried), "files": len(files), "lacking": lacking,
               "coverage": matrix.to_dict() if matrix else None}
    problems = [f"declares {' '.join(sorted(declared))}: no {', '.join(undeclared)}"] if undeclared else []
    for arch, libs in sorted(lacking.items()):
        shown = ", ".join(libs[:4]) + (f" (+{len(libs) - 4} more)" if len(libs) > 4 else "")
        problems.append(f"{shown} lack{'s' if len(libs) == 1 else ''} {arch}")
    problems += false_claims[:3]
    if problems:
        return Outcome("fail", f"{label} does not serve every image arch ({', '.join(context.arch_names)}): "
                               + "; ".join(problems) + " - choose a release whose device code covers them, or drop it from the image",
                       details)
    if not carried:
        return Outcome("fail", f"{label} declares {' '.join(sorted(declared))} but none of its {len(files)} file(s) carries device code", details)
    return Outcome("pass", f"{label}: declared and delivered ({len(files)} file(s), device code for "
                           f"{', '.join(sorted(carried))}) cover {', '.join(context.arch_names)}", details)
