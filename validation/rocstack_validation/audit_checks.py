"""Static audit of every native file a component installed (rocstack.audit), per component.

The image's own filesystem is the sysroot: its libstdc++, glibc and ld.so.conf decide
what resolves. The component's recipe policy (required symbols, GPU extensions, allowed
unresolved symbols, preloads, GLIBCXX ceiling) is applied; the targets are the image arches.
"""

from __future__ import annotations

import os

from rocstack_validation.installed import native_files
from rocstack_validation.results import Outcome, skip

MAX_LISTED = 12
MAX_DETAILS = 60
# Audit checks whose warnings mean "this part of the policy could not be verified" (e.g. no
# demangler for required symbols): validation reports them as an error, never as a pass.
UNVERIFIED_CHECKS = {"required-symbols"}


def _short(path: str) -> str:
    """site-packages/xformers/_C.so rather than the whole absolute path."""
    marker = "-packages/"
    return path.split(marker, 1)[1] if marker in path else path


def _line(finding) -> str:
    text = f"[{finding.check}] {_short(finding.file)}: {finding.message}"
    if finding.evidence:
        text += f" ({' '.join(finding.evidence.split())[:300]})"
    return text


def check_audit(component, context) -> Outcome:
    from rocstack.audit import AuditPolicy, run_audit

    policy = component.policy
    files = native_files(component, context.sysroot)
    if not files:
        if policy.gpu_extensions or policy.required_symbols:
            return Outcome("fail", f"{component.name} installed no shared libraries, but its recipe expects "
                                   f"GPU extensions {policy.gpu_extensions or '-'} / required symbols {policy.required_symbols or '-'}")
        return skip(f"{component.name} installed no shared libraries or code objects: nothing to audit")
    audit_policy = AuditPolicy.from_validation(policy, name=component.name)
    # one component: its files are judged together (a kernel set covers an arch when one of its files does);
    # in the image (sysroot /) this process runs with the image's environment, ROCM_KPACK_* included
    report = run_audit([os.fspath(f) for f in files], targets=list(context.arches), policy=audit_policy,
                       sysroot=context.sysroot, component=component.name,
                       env=dict(os.environ) if os.path.realpath(context.sysroot) == "/" else None)
    errors = [f for f in report.findings if f.severity == "error"]
    warnings = [f for f in report.findings if f.severity == "warning"]
    details = {
        "files": [_short(os.fspath(f)) for f in files],
        "targets": context.arch_names,
        "policy": audit_policy.name,
        "findings": [{"check": f.check, "severity": f.severity, "file": _short(f.file), "message": f.message,
                      "evidence": f.evidence, "hint": f.hint} for f in (errors + warnings)[:MAX_DETAILS]],
        # the coverage matrix (library x arch, with its source), when this rocstack's audit builds one
        "coverage": getattr(report, "coverage", None) and report.to_dict().get("coverage"),
    }
    scope = f"{len(files)} file(s) for {', '.join(context.arch_names)}"
    if errors and all(f.check == "io" for f in errors):  # unreadable files: no verdict on them either way
        return Outcome("error", f"audit could not read {len(errors)} of {scope}: " + "; ".join(_line(f) for f in errors[:MAX_LISTED]), details)
    if errors:
        listed = "; ".join(_line(f) for f in errors[:MAX_LISTED])
        more = f" (+{len(errors) - MAX_LISTED} more)" if len(errors) > MAX_LISTED else ""
        hints = sorted({f.hint for f in errors if f.hint})[:3]
        fix = f" Fix: {' / '.join(hints)}" if hints else ""
        return Outcome("fail", f"{len(errors)} error finding(s) in {scope}: {listed}{more}.{fix}", details)
    unverified = [f for f in warnings if f.check in UNVERIFIED_CHECKS]
    if unverified:
        listed = "; ".join(_line(f) + (f" - {f.hint}" if f.hint else "") for f in unverified)
        return Outcome("error", f"part of {component.name}'s policy could not be verified: {listed}", details)
    note = f", {len(warnings)} warning(s): " + "; ".join(_line(f) for f in warnings[:3]) if warnings else ""
    return Outcome("pass", f"no error findings in {scope}{note}", details)
