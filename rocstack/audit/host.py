"""Host-side checks of x86-64 libraries: resolution, versions, RPATH, required symbols, GPU extensions."""

from __future__ import annotations

import fnmatch

from rocstack.audit.context import PendingLibrary
from rocstack.audit.elf import ElfError
from rocstack.audit.magic import FATBIN_SECTION
from rocstack.audit.policy import AuditPolicy
from rocstack.audit.report import CHECK_GPU_EXT, AuditReport, FileSummary
from rocstack.audit.resolve import LoadedLib, Loader
from rocstack.audit.rpath import check_rpath
from rocstack.audit.symbols import check_needed, check_required, check_unresolved, uses_python_api
from rocstack.audit.sysroot import Sysroot
from rocstack.audit.versions import check_versions


def matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, "*/" + p) for p in patterns)


class HostChecks:
    def __init__(self, report: AuditReport, policy: AuditPolicy, sysroot: Sysroot, loader: Loader):
        self.report, self.policy, self.sysroot, self.loader = report, policy, sysroot, loader
        self._host_scope: list[LoadedLib] | None = None
        self.shared: list[tuple[object, LoadedLib]] = []
        self.has_fatbin: dict[str, bool] = {}  # rel -> whether it carries .hip_fatbin
        self.pending: list[PendingLibrary] = []

    def host_scope(self) -> list[LoadedLib] | None:
        """The interpreter's global scope (executable + its DT_NEEDED closure), opened once."""
        if self._host_scope is None and self.sysroot.python:
            try:
                python = self.loader.open(self.sysroot.python)
                self._host_scope = self.loader.closure(python).libs
            except (OSError, ElfError):
                self._host_scope = []
        return self._host_scope

    def host_object(self, item, lib: LoadedLib, summary: FileSummary) -> None:
        summary.kind = "shared-object" if lib.elf.type == 3 else "executable"
        summary.soname, summary.needed = lib.soname, lib.elf.needed
        summary.rpath, summary.runpath = lib.rpath, lib.runpath
        check_rpath(self.report, item.label, lib, self.loader)
        if lib.elf.has_dynsym():
            self.shared.append((item, lib))
            undefined = lib.elf.symbols(undefined=True)
            python = self.policy.python_host and uses_python_api(lib, undefined)
            host = self.host_scope() if python else None
            closure = self.loader.closure(lib, loaded=host)
            # resolution findings wait for context.settle: a dependency-only library is judged in its loader
            scratch = AuditReport(self.report.sysroot, self.report.policy, self.report.targets)
            check_needed(scratch, item.label, closure)
            check_unresolved(scratch, item.label, closure, undefined, host, self.policy,
                             python_missing=python and self.sysroot.python is None)
            self.pending.append(PendingLibrary(item.label, lib, undefined, closure, host, scratch.findings))
            summary.versions_needed = check_versions(self.report, item.label, closure, undefined, self.policy)
        self.has_fatbin[item.rel] = lib.elf.section(FATBIN_SECTION) is not None

    def gpu_extensions(self) -> None:
        for pattern in self.policy.gpu_extensions:
            hits = {rel: has for rel, has in self.has_fatbin.items() if matches(rel, [pattern])}
            if not hits:
                self.report.add(CHECK_GPU_EXT, "error", pattern,
                                f"GPU extension {pattern} is not among the audited files",
                                hint="audit the install root (or wheel) that contains it; a missing extension "
                                     "means the GPU build was skipped")
            for rel, has in hits.items():
                if not has:
                    self.report.add(
                        CHECK_GPU_EXT, "error", self._label(rel),
                        f"GPU extension has no {FATBIN_SECTION} section: it was built CPU-only",
                        evidence=f"matched policy gpu_extensions pattern {pattern}",
                        hint="rebuild with the HIP toolchain and an explicit arch list "
                             "(e.g. xFormers: HIP_ARCHITECTURES=gfx942 with torch.version.hip set)")

    def _label(self, rel: str) -> str:
        for item, _lib in self.shared:
            if item.rel == rel:
                return item.label
        return rel

    def required(self) -> None:
        if not self.policy.required_symbols:
            return
        where = self.policy.required_symbols_in
        libs = [(i.label, lib) for i, lib in self.shared if not where or matches(i.rel, where)]
        check_required(self.report, ", ".join(where) or "all audited libraries", libs, self.policy.required_symbols)
