"""``run_audit``: gather inputs, run every check on every file, return one AuditReport."""

from __future__ import annotations

import errno
import fnmatch
import os

from rocstack.arches import TargetID
from rocstack.audit.codeobject import parse_code_object
from rocstack.audit.context import PendingLibrary, settle
from rocstack.audit.elf import EM_AMDGPU, EM_X86_64, ET_DYN, ET_EXEC, ElfError
from rocstack.audit.fatbin import BundleError
from rocstack.audit.gpu import FATBIN_SECTION, audit_fatbin, check_code_objects, check_coverage, generic_runs_on
from rocstack.audit.inputs import AuditLimits, InputFile, collect_inputs
from rocstack.audit.policy import AuditPolicy
from rocstack.audit.report import (ALL_CHECKS, CHECK_ARCH, CHECK_CODE_OBJECT, CHECK_GPU_EXT, CHECK_INPUT, CHECK_IO,
                                   CHECK_PRELOAD, CHECK_REQUIRED, AuditReport, FileSummary)
from rocstack.audit.resolve import LoadedLib, Loader, find_preloads
from rocstack.audit.rpath import check_rpath
from rocstack.audit.symbols import check_needed, check_required, check_unresolved, uses_python_api
from rocstack.audit.sysroot import Sysroot
from rocstack.audit.versions import check_versions
from rocstack.errors import RocstackError


def _matches(rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, "*/" + p) for p in patterns)


class _Audit:
    def __init__(self, report: AuditReport, policy: AuditPolicy, targets: list[TargetID], sysroot: Sysroot,
                 loader: Loader, limits: AuditLimits):
        self.report, self.policy, self.targets = report, policy, targets
        self.sysroot, self.loader, self.limits = sysroot, loader, limits
        self._host_scope: list[LoadedLib] | None = None
        self.shared: list[tuple[InputFile, LoadedLib]] = []
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

    def file(self, item: InputFile) -> None:
        try:
            lib = self.loader.open(item.path, item.label)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.report.add(CHECK_INPUT, "error", item.label, "symlink loop: the path never reaches a file",
                                hint="remove or fix the symlink")
            else:
                self.report.add(CHECK_IO, "error", item.label, f"cannot read: {exc.strerror or exc}",
                                hint="check the path and permissions")
            self.report.files.append(FileSummary(item.label, "unreadable"))
            return
        except ElfError as exc:
            self.report.add(CHECK_INPUT, "error", item.label, str(exc).replace(item.label + ": ", "", 1),
                            hint="audit ELF shared libraries, executables, AMDGPU code objects or wheels")
            self.report.files.append(FileSummary(item.label, "unreadable", _size(item.path)))
            return
        summary = FileSummary(item.label, "other-elf", _size(item.path))
        self.report.files.append(summary)
        try:
            if lib.elf.machine == EM_AMDGPU:
                self.code_object(item, lib, summary)
            elif lib.elf.machine != EM_X86_64:
                self.report.add(CHECK_INPUT, "warning", item.label,
                                f"e_machine {lib.elf.machine} is neither x86_64 (62) nor AMDGPU (224): not audited",
                                hint="audit it on (or with a sysroot of) its own architecture")
            elif lib.elf.type in (ET_DYN, ET_EXEC):
                self.host_object(item, lib, summary)
        except (ElfError, BundleError) as exc:
            self.report.add(CHECK_INPUT, "error", item.label, f"corrupt: {str(exc).replace(item.label + ': ', '', 1)}",
                            hint="rebuild or re-download the file")
        except Exception as exc:  # noqa: BLE001 - one odd file must not abort the audit of the others
            self.report.add(CHECK_INPUT, "error", item.label,
                            f"the audit of this file failed: {type(exc).__name__}: {exc}",
                            hint="this is a rocstack bug: report it with the file")

    def code_object(self, item: InputFile, lib: LoadedLib, summary: FileSummary) -> None:
        summary.kind = "code-object"
        obj = parse_code_object(lib.elf.buf, 0, None, "file", item.label)
        summary.code_objects = [obj]
        check_code_objects(self.report, item.label, [obj])
        target = obj.target()
        if self.targets and target is not None and not any(
                target.runs_on(t) or generic_runs_on(target, t) for t in self.targets):
            self.report.add(CHECK_ARCH, "warning", item.label,
                            f"code object for {obj.target_id} runs on none of the requested targets",
                            evidence="requested: " + ", ".join(str(t) for t in self.targets),
                            hint="build this code object for the requested arches too")

    def host_object(self, item: InputFile, lib: LoadedLib, summary: FileSummary) -> None:
        summary.kind = "shared-object" if lib.elf.type == ET_DYN else "executable"
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
        carries = lib.elf.section(FATBIN_SECTION) is not None
        self.has_fatbin[item.rel] = carries
        if carries:
            summary.fatbin, objects = audit_fatbin(self.report, item.label, lib.elf, self.limits.max_bundle_bytes)
            summary.code_objects = objects
            check_code_objects(self.report, item.label, objects)
            if self.targets:
                check_coverage(self.report, item.label, objects, self.targets)

    def gpu_extensions(self) -> None:
        for pattern in self.policy.gpu_extensions:
            hits = {rel: has for rel, has in self.has_fatbin.items() if _matches(rel, [pattern])}
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
        libs = [(i.label, lib) for i, lib in self.shared if not where or _matches(i.rel, where)]
        check_required(self.report, ", ".join(where) or "all audited libraries", libs, self.policy.required_symbols)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def run_audit(paths, targets: list[TargetID] | None = None, policy: AuditPolicy | None = None,
              sysroot: str | os.PathLike = "/", limits: AuditLimits | None = None,
              ld_library_path: list[str] | None = None) -> AuditReport:
    """Audit files, directories and wheels; never raises for a bad file (those become findings).

    Raises RocstackError only for bad arguments: a path that does not exist, a sysroot that is not a directory.
    ``ld_library_path``: the LD_LIBRARY_PATH the libraries will run with (e.g. an image's ENV);
    by default none, so libraries must resolve through RPATH/RUNPATH and the loader's dirs.
    """
    policy = policy or AuditPolicy()
    targets = list(targets or [])
    limits = limits or AuditLimits()
    if not os.path.isdir(sysroot):
        raise RocstackError(f"sysroot {sysroot} is not a directory", "pass --sysroot pointing at a root filesystem")
    root = Sysroot(sysroot)
    report = AuditReport(root.root, policy.name, [str(t) for t in targets])
    with collect_inputs(paths, limits) as inputs:
        for problem in inputs.problems:
            report.add(CHECK_IO if problem.io else CHECK_INPUT, "error", problem.label, problem.message,
                       hint=problem.hint)
        preloaded, missing = find_preloads(policy.preload, root, inputs.roots)
        for pattern in missing:
            report.add(CHECK_PRELOAD, "warning", "policy",
                       f"preload '{pattern}' matches no library in the sysroot's site-packages",
                       evidence="searched: " + ", ".join([*inputs.roots, *root.site_packages]),
                       hint="install the package into the sysroot, or fix the policy's preload list")
        loader = Loader(root, preloaded, ld_library_path)
        audit = _Audit(report, policy, targets, root, loader, limits)
        try:
            for item in inputs.files:
                audit.file(item)
            settle(report, audit.pending)
            audit.gpu_extensions()
            audit.required()
        finally:
            loader.close()
    report.checks = {name: "ran" for name in ALL_CHECKS}
    if not targets:
        report.checks[CHECK_ARCH] = "skipped: no --arch given"
    if not policy.required_symbols:
        report.checks[CHECK_REQUIRED] = "skipped: the policy requires no symbols"
    if not policy.gpu_extensions:
        report.checks[CHECK_GPU_EXT] = "skipped: the policy names no GPU extensions"
    if not policy.preload:
        report.checks[CHECK_PRELOAD] = "skipped: the policy preloads nothing"
    if not any(f.code_objects for f in report.files):
        report.checks[CHECK_CODE_OBJECT] = "skipped: no AMDGPU code objects found"
    return report
