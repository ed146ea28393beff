"""Checks 1 and 2: unresolved undefined symbols, and symbols a policy requires to be exported."""

from __future__ import annotations

import fnmatch
import re

from rocstack.audit import demangle
from rocstack.audit.elf import STB_WEAK, Symbol
from rocstack.audit.policy import AuditPolicy
from rocstack.audit.report import CHECK_NEEDED, CHECK_REQUIRED, CHECK_UNRESOLVED, AuditReport
from rocstack.audit.resolve import Closure, LoadedLib

_SHOWN = 25  # names listed in one finding's evidence; the count says how many more
_PYTHON_API = ("Py", "_Py")


def check_needed(report: AuditReport, label: str, closure: Closure) -> None:
    for edge in closure.edges:
        if edge.path is not None:
            continue
        needer = "it" if edge.needed_by == closure.root.path else edge.needed_by
        report.add(
            CHECK_NEEDED, "error", label,
            f"DT_NEEDED {edge.name} (needed by {needer}) cannot be found: loading fails with "
            f"'{edge.name}: cannot open shared object file'",
            evidence="searched: " + (", ".join(edge.searched) or "nothing (no search path applies)"),
            hint=f"ship {edge.name} next to the library with RUNPATH $ORIGIN, install the package providing it, "
                 "or add the package that loads it first to the policy's preload list",
        )


def uses_python_api(lib: LoadedLib, undefined: list[Symbol]) -> bool:
    return any(s.name.startswith(_PYTHON_API) for s in undefined) or lib.elf.dynstr_contains(b"\0PyInit_")


def check_unresolved(report: AuditReport, label: str, closure: Closure, undefined: list[Symbol],
                     host_scope: list[LoadedLib] | None, policy: AuditPolicy, python_missing: bool) -> None:
    """Every non-weak undefined symbol must be defined (with its version) somewhere in the lookup scope.

    Scope = the interpreter's global scope (when the library is loaded by Python)
    followed by the library's own breadth-first DT_NEEDED closure.
    """
    scope = [*(host_scope or []), *closure.libs[1:]]
    missing_needed = any(e.path is None for e in closure.edges)
    unresolved: list[Symbol] = []
    skipped_python = 0
    for sym in undefined:
        if sym.bind == STB_WEAK:
            continue  # weak undefined: resolves to NULL, by design
        if any(lib.defines(sym.name, sym.version, sym.hidden) for lib in scope):
            continue
        if python_missing and sym.name.startswith(_PYTHON_API):
            skipped_python += 1
            continue
        unresolved.append(sym)
    if skipped_python:
        report.add(CHECK_UNRESOLVED, "warning", label,
                   f"{skipped_python} Python C-API symbols not checked: no Python interpreter found in the sysroot",
                   hint="pass --sysroot pointing at the image's root filesystem (with its python3)")
    if not unresolved:
        return
    names = demangle.demangle_many(s.name for s in unresolved)
    kept = [s for s in unresolved if not _allowed(s.name, names[s.name], policy.allowed_unresolved)]
    allowed = len(unresolved) - len(kept)
    if allowed:
        report.add(CHECK_UNRESOLVED, "info", label,
                   f"{allowed} unresolved symbols allowed by the policy's allowed_unresolved patterns")
    if not kept:
        return
    shown = [names[s.name] + (f"@{s.version}" if s.version else "") for s in kept[:_SHOWN]]
    more = f" (+{len(kept) - _SHOWN} more)" if len(kept) > _SHOWN else ""
    cause = " (some DT_NEEDED libraries are missing, see missing-needed)" if missing_needed else ""
    report.add(
        CHECK_UNRESOLVED, "error", label,
        f"{len(kept)} undefined symbols are defined by nothing it loads{cause}: "
        f"import/dlopen fails with 'undefined symbol: {kept[0].name}'",
        evidence="; ".join(shown) + more,
        hint="link the library that defines them (add it to DT_NEEDED), rebuild against the runtime's versions "
             "of its dependencies, or list a package loaded before it in the policy's preload",
    )


def symbol_glob(text: str, pattern: str) -> bool:
    """fnmatch with ``*`` and ``?`` only: ``[`` is literal, C++ names contain ``[abi:cxx11]``."""
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def _allowed(mangled: str, demangled: str, patterns: list[str]) -> bool:
    return any(symbol_glob(mangled, p) or symbol_glob(demangled, p) for p in patterns)


def matches_requirement(demangled: str, required: str) -> bool:
    """``ns::f`` matches ``ns::f``, ``ns::f(int)``, ``int ns::f<int>(int)`` (FBGEMM greps ``" ns::f("``).

    The name must end there (``ns::f`` does not match ``ns::ff``); ``*``/``?`` make it a glob.
    """
    if "*" in required or "?" in required:
        return symbol_glob(demangled, required)
    return re.search(r"(?:^|\s)" + re.escape(required) + r"(?:$|[(<\[])", demangled) is not None


def check_required(report: AuditReport, where: str, libs: list[tuple[str, LoadedLib]], required: list[str]) -> None:
    """Each required symbol must be exported by at least one of ``libs`` (FBGEMM's nm -gDC grep, resolved)."""
    if not required:
        return
    if not demangle.available() and any("::" in r or "*" in r for r in required):
        report.add(CHECK_REQUIRED, "warning", where, "required-symbols check skipped: no c++filt to demangle names",
                   hint="install binutils (c++filt) or llvm (llvm-cxxfilt)")
        return
    exported: dict[str, str] = {}  # mangled -> label of the first library exporting it
    for label, lib in libs:
        for name in lib.exports:
            exported.setdefault(name, label)
    candidates: set[str] = set()
    for req in required:
        fragments = demangle.mangled_fragments(req)
        if fragments is None:
            candidates.update(exported)  # templates, globs: demangle everything exported
            break
        candidates.update(n for n in exported if n == req or (n.startswith("_Z") and all(f in n for f in fragments)))
    names = demangle.demangle_many(sorted(candidates))
    missing = []
    for req in required:
        hits = [m for m in candidates if matches_requirement(names[m], req)]
        if not hits:
            missing.append(req)
    searched = ", ".join(label for label, _ in libs) or "no library matched required_symbols_in"
    if missing:
        report.add(
            CHECK_REQUIRED, "error", where,
            f"{len(missing)} of {len(required)} required symbols are not exported: " + ", ".join(missing),
            evidence=f"searched the exported dynamic symbols of: {searched}",
            hint="the component was built without the code that defines them (wrong build variant or "
                 "a disabled feature): rebuild with the GPU variant or fix the policy",
        )
    else:
        report.add(CHECK_REQUIRED, "info", where, f"all {len(required)} required symbols are exported",
                   evidence=f"searched: {searched}")
