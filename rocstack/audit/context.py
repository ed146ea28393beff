"""Libraries that only load as someone's dependency, judged where they are loaded.

A vendored library (``scipy.libs/libgfortran-*.so``) often has no RPATH of its own:
it finds its siblings through the RPATH of the extension that loads it (DT_RPATH is
inherited along the loading chain) or because they are loaded already. dlopen'd
alone it fails, but nothing ever does that. When such a library is also in the
DT_NEEDED closure of another audited file and resolves completely in that
closure's scope, its standalone errors become one info finding naming the loader;
if it fails there too, the errors stand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from rocstack.audit.elf import STB_WEAK, Symbol
from rocstack.audit.report import AuditReport, Finding
from rocstack.audit.resolve import Closure, LoadedLib


@dataclass
class PendingLibrary:
    label: str
    lib: LoadedLib
    undefined: list[Symbol]
    closure: Closure
    host_scope: list[LoadedLib] | None  # the interpreter scope when it is a Python extension
    findings: list[Finding] = field(default_factory=list)


def _resolves_within(pending: PendingLibrary, loader: PendingLibrary) -> bool:
    if any(name not in loader.closure.by_name for name in pending.lib.elf.needed):
        return False
    scope = [*(loader.host_scope or pending.host_scope or []), *loader.closure.libs]
    return all(
        sym.bind == STB_WEAK or any(lib.defines(sym.name, sym.version, sym.hidden) for lib in scope)
        for sym in pending.undefined
    )


def settle(report: AuditReport, pending: list[PendingLibrary]) -> None:
    """Move each pending library's findings into ``report``, excusing dependency-only libraries."""
    members = [{os.path.realpath(lib.path) for lib in p.closure.libs[1:]} for p in pending]
    for item in pending:
        errors = [f for f in item.findings if f.severity == "error"]
        if errors:
            me = os.path.realpath(item.lib.path)
            for other, closure_paths in zip(pending, members):
                if other is item or me not in closure_paths or not _resolves_within(item, other):
                    continue
                kept = [f for f in item.findings if f.severity != "error"]
                kept.append(Finding(
                    errors[0].check, "info", item.label,
                    f"loads as a dependency of {other.label}, where everything it needs resolves; "
                    f"dlopen'd alone it would fail ({len(errors)} findings: {errors[0].message})",
                    evidence=errors[0].evidence,
                    hint="nothing to do unless something loads it directly; then give it RUNPATH $ORIGIN",
                ))
                item.findings = kept
                break
        report.findings.extend(item.findings)
