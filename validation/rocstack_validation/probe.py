"""In-image checks for any image, run by the image's own Python with this package mounted read-only.

``python -B -m rocstack_validation.probe --spec SPEC --out FILE``: the host writes SPEC
(the target arches, the modules to import, what the static part read about torch) and
mounts this package plus the few pure-Python modules of rocstack it needs; nothing is
installed into the image. Only the standard library, ``rocstack.arches`` and whatever
the image itself provides (torch) are imported, so it runs on any Python >= 3.9.

Checks: each module imports in a fresh interpreter; torch is a ROCm build whose arch
list covers the targets and is the torch the static audit read; the GPU's target ID
runs the image's code (``gpu-arch``); a GPU matmul agrees with the CPU (``gpu-smoke``);
an AOT kernel build loads without a single compile (``no-jit``). GPU checks are ``skip``
with the reason when no GPU is visible, never ``pass``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from rocstack_validation import SUITE_SCHEMA, __version__
from rocstack_validation import gpu as gpu_mod
from rocstack_validation import torch_arches
from rocstack_validation.results import Outcome, run_check, skip

IMPORT_TIMEOUT_S = 300
NO_JIT_TIMEOUT_S = 1800


def _last_line(text: str, fallback: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:400] if lines else fallback


def check_import(module: str) -> Outcome:
    proc = subprocess.run([sys.executable, "-B", "-c", f"import {module}"], capture_output=True, text=True,
                          timeout=IMPORT_TIMEOUT_S)
    if proc.returncode == 0:
        return Outcome("pass", f"import {module} succeeded in a fresh interpreter")
    return Outcome("fail", f"import {module} failed: {_last_line(proc.stderr, f'exit status {proc.returncode}')}",
                   {"returncode": proc.returncode, "stderr_tail": proc.stderr[-2000:]})


def _targets(spec: dict) -> list:
    from rocstack.arches import parse_target_id

    return [parse_target_id(t, known_only=False) for t in spec.get("targets") or []]


def _torch():
    try:
        import torch
    except ImportError as exc:
        return None, str(exc)
    return torch, None


def check_torch_variant(spec: dict) -> Outcome:
    torch, error = _torch()
    if torch is None:
        if spec.get("torch"):
            return Outcome("fail", f"torch {spec['torch'].get('version')} is installed but does not import: {error}")
        return skip("torch is not installed in the image: no torch variant to check")
    hip, cuda = torch.version.hip, torch.version.cuda
    found = f"torch {torch.__version__} (torch.version.hip={hip}, torch.version.cuda={cuda})"
    targets = _targets(spec)
    if not hip:
        return Outcome("fail", f"{found} is not a ROCm build, but the image targets {', '.join(map(str, targets)) or 'AMD GPUs'}: "
                               "a CPU-only or CUDA torch slipped in (install from the ROCm index with --index-url)",
                       {"torch": torch.__version__, "hip": hip, "cuda": cuda})
    arch_list, source = torch_arches.arch_list(torch)
    compiled = torch_arches.processors(arch_list)
    missing = [str(t) for t in targets if t.processor not in compiled]
    details = {"torch": torch.__version__, "hip": hip, "arch_list": arch_list}
    if missing:
        return Outcome("fail", f"{found} has no kernels for {', '.join(missing)} ({source} = {', '.join(arch_list) or 'empty'}): "
                               "torch ops fail with hipErrorNoBinaryForGpu there", details)
    return Outcome("pass", f"{found}; {source} covers {', '.join(map(str, targets)) or 'no requested arch'}", details)


def check_torch_delivers(spec: dict) -> Outcome:
    """Declared vs delivered for torch: its compiled arch list against the code objects the static audit read
    in its own ``libtorch_hip.so`` (an arch it names but does not carry fails there with hipErrorNoBinaryForGpu)."""
    delivered = (spec.get("torch") or {}).get("offload_targets")
    torch, _error = _torch()
    if torch is None or not torch.version.hip:
        return skip("no ROCm torch imports in the image: no arch list to compare")
    if delivered is None:
        return skip("the static audit found no torch/lib/libtorch_hip.so to read torch's device code from")
    arch_list, source = torch_arches.arch_list(torch)
    missing, undeclared = torch_arches.declared_vs_delivered(arch_list, delivered)
    details = {"declared": arch_list, "declared_source": source, "delivered": delivered,
               "declared_not_delivered": missing, "delivered_not_declared": undeclared}
    if missing:
        return Outcome("fail", f"torch's arch list ({source}) names {', '.join(missing)} but libtorch_hip.so carries no "
                               f"code for {'it' if len(missing) == 1 else 'them'}: torch ops fail with "
                               "hipErrorNoBinaryForGpu there", details)
    note = f"; it also carries {', '.join(undeclared)}, which the list does not name" if undeclared else ""
    return Outcome("pass", f"every arch torch's list names ({', '.join(sorted(torch_arches.processors(arch_list)))}) "
                           f"has code in libtorch_hip.so{note}", details)


def check_torch_origin(spec: dict) -> Outcome:
    """The torch Python imports is the one the static part audited (no second install shadowing it)."""
    expected = spec.get("torch")
    torch, error = _torch()
    if torch is None or not expected:
        return skip("torch is not installed (or not importable): nothing to compare with the audited one")
    where = os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__)))
    same_place = os.path.realpath(expected["site"]) == where
    same_version = torch.__version__ == expected["version"]
    details = {"imported_from": where, "imported_version": torch.__version__, "audited": expected}
    if same_place and same_version:
        return Outcome("pass", f"python imports torch {torch.__version__} from {where}, the install the audit read", details)
    return Outcome("fail", f"python imports torch {torch.__version__} from {where}, but the audited install is "
                           f"torch {expected['version']} in {expected['site']}: another torch shadows it", details)


def check_gpu_arch(spec: dict, gpu) -> Outcome:
    if not gpu.available:
        return skip(f"no GPU: {gpu.reason}")
    if gpu.vendor != "amd":
        return skip(f"{gpu.name} ({gpu.arch}) is not an AMD GPU: gfx code-object coverage does not apply")
    from rocstack.arches import parse_target_id

    device = parse_target_id(gpu.target_id or gpu.arch, known_only=False)
    targets = _targets(spec)
    covered = [t for t in targets if t.runs_on(device)]
    if covered:
        return Outcome("pass", f"{gpu.name} is {device}, covered by image arch {covered[0]}")
    return Outcome("fail", f"{gpu.name} is {device} but the image targets {', '.join(map(str, targets))}: "
                           "its code fails with hipErrorNoBinaryForGpu on this GPU")


def check_gpu_smoke(gpu) -> Outcome:
    if not gpu.available:
        return skip(f"no GPU: {gpu.reason}")
    torch, error = _torch()
    if torch is None:
        return skip(f"torch does not import ({error}): no GPU test to run")
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(512, 512, generator=generator)
    b = torch.randn(512, 512, generator=generator)
    want = a @ b
    got = (a.to("cuda") @ b.to("cuda")).cpu()
    error_max = float((got - want).abs().max())
    if error_max <= 1e-2:
        return Outcome("pass", f"512x512 fp32 matmul on {gpu.name} matches the CPU (max abs error {error_max:.2e})")
    return Outcome("fail", f"512x512 fp32 matmul on {gpu.name} differs from the CPU by {error_max:.3g}")


def check_no_jit(build: str, gpu) -> Outcome:
    if not gpu.available:
        return skip(f"no GPU: {gpu.reason}; the no-JIT proof loads every AOT kernel on a GPU")
    with tempfile.TemporaryDirectory(prefix="rocstack-nojit-") as tmp:
        out = os.path.join(tmp, "no_jit.json")
        proc = subprocess.run([sys.executable, "-B", "-m", "rocstack_kernels.no_jit", "--prebuilt", build, "--json", out],
                              capture_output=True, text=True, timeout=NO_JIT_TIMEOUT_S)
        if not os.path.exists(out):
            return Outcome("error", f"the no-JIT proof did not finish: {_last_line(proc.stderr or proc.stdout, 'no output')}")
        with open(out) as handle:
            data = json.load(handle)
    compiled = sum(data.get("compiled_functions", {}).values())
    loaded = sum(data.get("loaded_functions", {}).values())
    if compiled or data.get("errors"):
        names = ", ".join(f"{k} x{v}" for k, v in data.get("compiled_functions", {}).items()) or "-"
        return Outcome("fail", f"{compiled} kernel(s) compiled at run time ({names}); errors: {data.get('errors') or '-'}", data)
    return Outcome("pass", f"every AOT kernel loaded from {build} ({loaded} loads, 0 compiles on {gpu.name})", data)


def run_probe(spec: dict) -> dict:
    started = datetime.now(timezone.utc)
    start = time.monotonic()
    gpu = gpu_mod.detect()
    checks = [run_check(f"import:{m}", "python", lambda m=m: check_import(m), m) for m in spec.get("imports") or []]
    checks.append(run_check("torch-variant", "python", lambda: check_torch_variant(spec)))
    checks.append(run_check("torch-delivers", "python", lambda: check_torch_delivers(spec)))
    checks.append(run_check("torch-origin", "python", lambda: check_torch_origin(spec)))
    checks.append(run_check("gpu-arch", "python", lambda: check_gpu_arch(spec, gpu)))
    checks.append(run_check("gpu-smoke", "correctness", lambda: check_gpu_smoke(gpu)))
    for build in spec.get("aot_builds") or []:
        checks.append(run_check(f"no-jit:{build}", "correctness", lambda b=build: check_no_jit(b, gpu)))
    return {
        "schema": SUITE_SCHEMA, "suite_version": __version__, "mode": "probe",
        "started": started.isoformat(timespec="seconds"), "duration_s": round(time.monotonic() - start, 3),
        "environment": {"python": sys.version.split()[0], "executable": sys.executable,
                        "platform": platform.platform(), "gpu": gpu.to_json()},
        "checks": [c.to_json() for c in checks],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rocstack-validation-probe", description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON written by the host: targets, imports, torch")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        spec = json.load(handle)
    from rocstack.fsutil import write_atomic

    write_atomic(args.out, json.dumps(run_probe(spec), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
