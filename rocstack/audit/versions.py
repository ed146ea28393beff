"""Check 3: symbol versions (GLIBC, GLIBCXX, CXXABI, GCC) against the runtime and a policy ceiling.

Two questions, like ld.so and auditwheel ask them: does the library the
sysroot would load define every version this object needs (``.gnu.version_r``
vs the provider's ``.gnu.version_d``; ld.so fails with "version `X' not found"),
and is every needed version at or below the policy's ceiling for its family.
"""

from __future__ import annotations

from rocstack.audit import demangle
from rocstack.audit.elf import Symbol
from rocstack.audit.policy import AuditPolicy, split_version, version_key
from rocstack.audit.report import CHECK_VERSIONS, AuditReport
from rocstack.audit.resolve import Closure

_SHOWN = 8
_LOADER_PREFIX = "ld-linux"  # the dynamic loader's own versions are not a portability question


def _symbols_by_version(undefined: list[Symbol]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sym in undefined:
        if sym.version:
            out.setdefault(sym.version, []).append(sym.name)
    return out


def newest_versions(closure: Closure) -> dict[str, str]:
    """Family -> newest version the root object needs."""
    newest: dict[str, tuple] = {}
    text: dict[str, str] = {}
    for need in closure.root.elf.version_needs:
        for tag, _weak in need.versions:
            parsed = split_version(tag)
            if parsed is None:
                continue
            family, version = parsed
            key = version_key(version)
            if key is not None and (family not in newest or key > newest[family]):
                newest[family], text[family] = key, version
    return text


def _evidence(tag: str, by_version: dict[str, list[str]]) -> str:
    names = by_version.get(tag, [])
    more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    shown = demangle.demangle_many(names[:_SHOWN])
    return f"symbols needing {tag}: " + (", ".join(shown.values()) + more if names else "none listed")


def check_versions(report: AuditReport, label: str, closure: Closure, undefined: list[Symbol],
                   policy: AuditPolicy) -> dict[str, str]:
    by_version = _symbols_by_version(undefined)
    for need in closure.root.elf.version_needs:
        provider = closure.by_name.get(need.file)
        if provider is None or need.file.startswith(_LOADER_PREFIX):
            continue  # not found: reported by missing-needed
        defined = set(provider.elf.version_definitions.values())
        for tag, weak in need.versions:
            if weak or tag in defined:
                continue
            newest = _newest_of_family(tag, defined)
            report.add(
                CHECK_VERSIONS, "error", label,
                f"version `{tag}' not found (required by it) in {provider.path}"
                + (f": that library provides up to {newest}" if newest else ""),
                evidence=_evidence(tag, by_version),
                hint="build with a toolchain no newer than the runtime (or a manylinux image), "
                     "or ship a newer runtime library in the image",
            )
    newest = newest_versions(closure)
    for family, ceiling in policy.symbol_ceilings.items():
        needed = newest.get(family)
        if needed is None or version_key(needed) <= version_key(ceiling):
            continue
        over = sorted(
            {t for need in closure.root.elf.version_needs for t, _ in need.versions
             if (p := split_version(t)) and p[0] == family and (k := version_key(p[1])) and k > version_key(ceiling)},
            key=lambda t: version_key(split_version(t)[1]),
        )
        report.add(
            CHECK_VERSIONS, "error", label,
            f"needs {family}_{needed}, above the {policy.name} ceiling {family}_{ceiling}",
            evidence="; ".join(_evidence(t, by_version) for t in over[-3:]),
            hint=f"rebuild with an older toolchain (the {policy.name} build image) or pick a policy "
                 f"whose runtime provides {family}_{needed}",
        )
    private = [t for need in closure.root.elf.version_needs for t, _ in need.versions if t.endswith("_PRIVATE")]
    for tag in private:
        report.add(CHECK_VERSIONS, "warning", label, f"uses {tag} symbols: internal to that glibc build",
                   evidence=_evidence(tag, by_version), hint="do not link against private glibc interfaces")
    return newest


def _newest_of_family(tag: str, defined: set[str]) -> str | None:
    parsed = split_version(tag)
    if parsed is None:
        return None
    family = parsed[0]
    best = None
    for other in defined:
        p = split_version(other)
        if p and p[0] == family and (k := version_key(p[1])) is not None:
            if best is None or k > best[0]:
                best = (k, other)
    return best[1] if best else None
