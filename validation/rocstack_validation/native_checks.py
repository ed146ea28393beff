"""Checks of native (non-Python) components: their test programs and their kernels' resources.

``validation.programs``: each program the component installs runs once; exit 0 is a pass,
77 a skip whose reason is its last line (the convention of automake and ctest: no GPU),
anything else a failure with its last lines. A program runs its checks that need no GPU
first, so without a GPU it still proves the library loads and refuses bad arguments.

``validation.resources``: the code-object resources of every kernel the component
installed (rocstack's audit: registers, spills, scratch, LDS, occupancy) against the arch
limits and the recipe's policy. Spills are a warning by default (``spills: warn``): Debian's
upstream LLVM spills in every CK fmha instance where AMD's ROCm LLVM, which ck_tile is tuned
against, may not; a policy can make them a failure, or ignore them.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from rocstack_validation.installed import native_files
from rocstack_validation.results import Outcome

PROGRAM_TIMEOUT_S = 900
SKIP = 77
TAIL = 12
MAX_ROWS = 40


def _lines(text: str) -> list[str]:
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()]


def check_program(component, program, gpu) -> Outcome:
    argv = shlex.split(program.command)
    if not argv or not os.path.isfile(argv[0]):
        return Outcome("fail", f"{component.name}'s test program {program.name} is not in the image: {argv[0] if argv else '(empty)'}")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=PROGRAM_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome("error", f"{program.name} did not finish in {PROGRAM_TIMEOUT_S} s")
    except OSError as exc:
        return Outcome("fail", f"{program.name} could not start: {exc}")
    lines = _lines(proc.stdout + proc.stderr)
    details = {"command": program.command, "returncode": proc.returncode, "output_tail": lines[-TAIL:]}
    passed = [ln for ln in lines if ln.startswith("ok:")]
    if proc.returncode == 0:
        return Outcome("pass", f"{program.name} exited 0 ({len(passed)} check line(s) ok)" + (
            "" if not lines else f": {lines[-1][:200]}"), details)
    if proc.returncode == SKIP:
        reason = lines[-1] if lines else "no reason given"
        where = "" if not program.gpu else (" - expected without a GPU" if not gpu.available else " - with a GPU present")
        status = "skip" if not (program.gpu and gpu.available) else "fail"
        return Outcome(status, f"{program.name} skipped after {len(passed)} check(s) that need no GPU passed: "
                               f"{reason}{where}", details)
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    shown = "; ".join((failed or lines[-3:])[:5])
    return Outcome("fail", f"{program.name} exited {proc.returncode}: {shown[:600]}", details)


def _kernel_rows(report) -> list[dict]:
    rows = []
    for summary in report.files:
        for obj in summary.code_objects:
            for k in obj.kernels:
                rows.append({"file": os.path.basename(summary.path), "target": obj.target_id, "kernel": k.name,
                             "vgprs": k.vgprs, "agprs": k.agprs, "sgprs": k.sgprs, "vgpr_spills": k.vgpr_spills,
                             "sgpr_spills": k.sgpr_spills, "scratch_bytes": k.scratch_bytes, "lds_bytes": k.lds_bytes,
                             "occupancy": k.occupancy})
    return rows


def _short(name: str) -> str:
    return name if len(name) <= 60 else name[:57] + "..."


def judge_resources(rows: list[dict], policy, lds_limits: dict[str, int]) -> Outcome:
    """Pure: the kernels' resources against the arch's LDS and the recipe's spill/scratch policy."""
    if not rows:
        return Outcome("fail", "no kernel found in the component's code objects: nothing to judge "
                               "(a ROCm component without kernels lost its device code)")
    spills = [r for r in rows if r["vgpr_spills"] or r["sgpr_spills"]]
    limit = policy.max_scratch_bytes
    scratch = [r for r in rows if limit is not None and r["scratch_bytes"] > limit]
    lds = [r for r in rows if (r["target"] or "").split(":")[0] in lds_limits
           and r["lds_bytes"] > lds_limits[(r["target"] or "").split(":")[0]]]
    details = {"kernels": rows[:MAX_ROWS], "policy": {"spills": policy.spills, "max_scratch_bytes": limit}}
    summary = (f"{len(rows)} kernel(s): VGPRs {min(r['vgprs'] or 0 for r in rows)}-{max(r['vgprs'] or 0 for r in rows)}, "
               f"LDS up to {max(r['lds_bytes'] for r in rows)} B, occupancy "
               f"{min((r['occupancy'] for r in rows if r['occupancy']), default='?')} wave(s)/SIMD or more")
    problems = []
    if lds:
        problems.append(f"{len(lds)} kernel(s) need more LDS than their arch has: " + ", ".join(
            f"{r['target']} {_short(r['kernel'])} {r['lds_bytes']} B" for r in lds[:3]))
    if scratch:
        problems.append(f"{len(scratch)} kernel(s) use more than {limit} B of scratch per lane: " + ", ".join(
            f"{r['target']} {_short(r['kernel'])} {r['scratch_bytes']} B" for r in scratch[:3]))
    spill_text = (f"{len(spills)} of {len(rows)} kernel(s) spill (VGPR spills "
                  f"{min(r['vgpr_spills'] for r in spills)}-{max(r['vgpr_spills'] for r in spills)}, scratch up to "
                  f"{max(r['scratch_bytes'] for r in spills)} B/lane)") if spills else ""
    if spills and policy.spills == "fail":
        problems.append(spill_text + " - the recipe's policy makes spills a failure")
    if problems:
        return Outcome("fail", f"{summary}; " + "; ".join(problems), details)
    if spills and policy.spills == "warn":
        return Outcome("pass", f"{summary}; warning: {spill_text} - slower than spill-free code; the recipe's "
                               "policy (resources.spills: warn) reports it without failing", details)
    return Outcome("pass", summary + ("; spills ignored by policy" if spills else "; no spills"), details)


def check_resources(component, context) -> Outcome:
    from rocstack.arches import all_arches
    from rocstack.audit import run_audit

    files = native_files(component, context.sysroot)
    if not files:
        return Outcome("fail", f"{component.name} installed no library or code object, but its recipe sets a resource policy")
    report = run_audit([os.fspath(f) for f in files], targets=list(context.arches), sysroot=context.sysroot)
    limits = {name: arch.lds_bytes_per_workgroup for name, arch in all_arches().items()}
    return judge_resources(_kernel_rows(report), component.policy.resources, limits)
