"""``run_audit``: gather inputs, run every check on every file, return one AuditReport.

The device-code modules (bundles, code objects, kernel databases, the coverage matrix)
are imported when the first piece of device code is met: auditing a host library alone
costs no more start-up than the host checks need.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Mapping

from rocstack.audit import magic
from rocstack.audit.context import settle
from rocstack.audit.elf import EM_AMDGPU, EM_X86_64, ET_DYN, ET_EXEC, ElfError, MappedFile
from rocstack.audit.host import HostChecks
from rocstack.audit.inputs import KERNEL_DB, TENSILE_DATA, AuditLimits, InputFile, collect_inputs
from rocstack.audit.kpack import REF_SECTION, is_split
from rocstack.audit.magic import FATBIN_SECTION
from rocstack.audit.policy import AuditPolicy
from rocstack.audit.report import (ALL_CHECKS, CHECK_ARCH, CHECK_CODE_OBJECT, CHECK_GPU_EXT, CHECK_INPUT, CHECK_IO,
                                   CHECK_PRELOAD, CHECK_REQUIRED, AuditReport, FileSummary)
from rocstack.audit.resolve import Loader, find_preloads
from rocstack.audit.sysroot import Sysroot
from rocstack.errors import RocstackError

if TYPE_CHECKING:
    from rocstack.arches import TargetID
    from rocstack.audit.devicecode import DeviceRow
    from rocstack.audit.kpack_layer import KpackLayer

_DEVICE_FILES = (magic.ELF_AMDGPU, magic.BUNDLE, magic.COMPRESSED_BUNDLE)


class _Audit(HostChecks):
    """Per-file dispatch by content, then the device-code rows of the coverage matrix."""

    def __init__(self, report: AuditReport, policy: AuditPolicy, targets: list[TargetID], sysroot: Sysroot,
                 loader: Loader, limits: AuditLimits, env: Mapping[str, str] | None = None):
        super().__init__(report, policy, sysroot, loader)
        self.targets, self.limits, self.env = targets, limits, env
        self.kpack: KpackLayer | None = None  # made when the first split library or archive is met
        self.rows: list[DeviceRow] = []
        self.file_units: list[tuple[InputFile, object]] = []  # per-file units: kernel sets or Tensile files
        self.tensile: dict = {}  # directory -> tensile.TensileDirectory
        self.kdb_rows: dict[str, DeviceRow] = {}
        self.real: dict[str, str] = {}  # label -> real path, for package ownership

    def file(self, item: InputFile) -> None:
        self.real[item.label] = os.path.realpath(item.path)
        if item.kind == magic.KPACK:
            self.kpack_layer().add_archive(item)  # read once every split library is known
            return
        if item.kind == TENSILE_DATA:
            from rocstack.audit.tensile import TensileDirectory

            folder = os.path.dirname(item.path)
            entry = self.tensile.setdefault(folder, TensileDirectory(folder, os.path.dirname(item.label), item.component))
            entry.dat_files.append(os.path.basename(item.path))
            return
        summary = FileSummary(item.label, "other-elf", _size(item.path))
        if item.kind not in _DEVICE_FILES and item.kind != KERNEL_DB:
            self.elf_file(item, summary)
            return
        try:
            self._guarded(item, self.kernel_db if item.kind == KERNEL_DB else self.device_file, summary)
        except OSError as exc:
            self._unreadable(item, exc)
            return
        self.report.files.append(summary)

    def _guarded(self, item: InputFile, check, summary: FileSummary) -> None:
        """Run one file's check; damage becomes a finding, OSError goes to the caller."""
        try:
            check(item, summary)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - one odd file must not abort the audit of the others
            from rocstack.audit.fatbin import BundleError

            if isinstance(exc, (ElfError, BundleError)):
                self.report.add(CHECK_INPUT, "error", item.label,
                                f"corrupt: {str(exc).replace(item.label + ': ', '', 1)}",
                                hint="rebuild or re-download the file")
            else:
                self.report.add(CHECK_INPUT, "error", item.label,
                                f"the audit of this file failed: {type(exc).__name__}: {exc}",
                                hint="this is a rocstack bug: report it with the file")

    def _unreadable(self, item: InputFile, exc: OSError) -> None:
        if exc.errno == errno.ELOOP:
            self.report.add(CHECK_INPUT, "error", item.label, "symlink loop: the path never reaches a file",
                            hint="remove or fix the symlink")
        else:
            self.report.add(CHECK_IO, "error", item.label, f"cannot read: {exc.strerror or exc}",
                            hint="check the path and permissions")
        self.report.files.append(FileSummary(item.label, "unreadable"))

    def device_file(self, item: InputFile, summary: FileSummary) -> None:
        from rocstack.audit.devicecode import BUNDLE_FILE, audit_bundles, audit_code_object_file
        from rocstack.audit.gpu import check_code_objects

        with MappedFile(item.path) as mapped:
            if item.kind == magic.ELF_AMDGPU:
                summary.kind = "code-object"
                obj, unit = audit_code_object_file(item.label, mapped.buf)
                objects = [obj]
            else:
                summary.kind = "offload-bundle"
                summary.fatbin, objects, units = audit_bundles(
                    self.report, item.label, mapped.buf, 0, mapped.size, self.limits.max_bundle_bytes, BUNDLE_FILE,
                    "offload bundle file", self.limits.verify_bundle_hashes)
                unit = units[0] if len(units) == 1 else _merge_units(units)
        summary.code_objects = objects
        check_code_objects(self.report, item.label, objects)
        self.file_units.append((item, unit))

    def kernel_db(self, item: InputFile, summary: FileSummary) -> None:
        from rocstack.audit.devicecode import DATABASE, DeviceRow
        from rocstack.audit.fatbin import BundleError
        from rocstack.audit.gpu import check_code_objects
        from rocstack.audit.miopen import KdbError, audit_kdb  # sqlite3: only for kernel databases

        summary.kind = "kernel-database"
        try:
            objects, unit = audit_kdb(item.path, item.label)
        except KdbError as exc:
            raise BundleError(str(exc)) from None  # reported like any damaged device-code file
        summary.code_objects = objects
        check_code_objects(self.report, item.label, objects)
        folder = os.path.dirname(item.label)
        row = self.kdb_rows.setdefault(folder, DeviceRow(folder, DATABASE, item.component))
        row.units.append(unit)
        row.files.append(item.label)

    def elf_file(self, item: InputFile, summary: FileSummary) -> None:
        try:
            lib = self.loader.open(item.path, item.label)
        except OSError as exc:
            self._unreadable(item, exc)
            return
        except ElfError as exc:
            self.report.add(CHECK_INPUT, "error", item.label, str(exc).replace(item.label + ": ", "", 1),
                            hint="audit ELF shared libraries, executables, AMDGPU code objects, offload bundles, "
                                 "kernel databases, wheels or .deb packages")
            self.report.files.append(FileSummary(item.label, "unreadable", _size(item.path)))
            return
        self.report.files.append(summary)
        self._guarded(item, lambda item, summary: self.loaded_elf(item, lib, summary), summary)

    def loaded_elf(self, item: InputFile, lib, summary: FileSummary) -> None:
        if lib.elf.machine == EM_AMDGPU:  # named on the command line: sniffed as such already otherwise
            from rocstack.audit.devicecode import audit_code_object_file
            from rocstack.audit.gpu import check_code_objects

            summary.kind = "code-object"
            obj, unit = audit_code_object_file(item.label, lib.elf.buf)
            summary.code_objects = [obj]
            check_code_objects(self.report, item.label, [obj])
            self.file_units.append((item, unit))
        elif lib.elf.machine != EM_X86_64:
            self.report.add(CHECK_INPUT, "warning", item.label,
                            f"e_machine {lib.elf.machine} is neither x86_64 (62) nor AMDGPU (224): not audited",
                            hint="audit it on (or with a sysroot of) its own architecture")
        elif lib.elf.type in (ET_DYN, ET_EXEC):
            self.host_object(item, lib, summary)
            if lib.elf.section(FATBIN_SECTION) is not None or lib.elf.section(REF_SECTION) is not None:
                self.fat_binary(item, lib, summary)

    def kpack_layer(self) -> KpackLayer:
        if self.kpack is None:
            from rocstack.audit.kpack_archive import ArchiveLimits
            from rocstack.audit.kpack_layer import KpackLayer

            self.kpack = KpackLayer(self.report, self.sysroot, self.env, self.targets,
                                    ArchiveLimits(max_code_object_bytes=self.limits.max_bundle_bytes), self.real)
        return self.kpack

    def fat_binary(self, item: InputFile, lib, summary: FileSummary) -> None:
        from rocstack.audit.devicecode import LIBRARY, DeviceRow, audit_library_fatbin
        from rocstack.audit.gpu import check_code_objects

        if is_split(lib.elf):  # its code objects are in .kpack archives: judged once every input is read
            self.rows.append(self.kpack_layer().add_library(item, lib.elf, summary))
            return

        summary.fatbin, objects, units = audit_library_fatbin(self.report, item.label, lib.elf,
                                                              self.limits.max_bundle_bytes,
                                                              self.limits.verify_bundle_hashes)
        summary.code_objects = objects
        check_code_objects(self.report, item.label, objects)
        self.rows.append(DeviceRow(item.label, LIBRARY, item.component, units, [item.label]))

    def device_rows(self) -> list[DeviceRow]:
        """Libraries, then databases (Tensile directories, MIOpen kdb folders), then kernel sets; the
        kpack-split libraries' units last, judged for the targets the others hold when no --arch is given."""
        rows = list(self.rows) + self._file_rows()
        if self.kpack is not None:
            self.kpack.finish(sorted({t for row in rows for u in row.units for t in u.targets}))
        return rows

    def _file_rows(self) -> list[DeviceRow]:
        if not (self.file_units or self.tensile or self.kdb_rows):
            return []
        from rocstack.audit.kernelsets import group
        from rocstack.audit.tensile import audit_directory

        rows: list[DeviceRow] = []
        claimed: set[str] = set()
        by_folder: dict[str, dict[str, object]] = {}
        for item, unit in self.file_units:
            by_folder.setdefault(os.path.dirname(item.path), {})[os.path.basename(item.path)] = unit
        for folder, directory in sorted(self.tensile.items()):
            if not directory.indexes:
                continue  # .dat files without a Tensile index: not a kernel database
            directory.units = by_folder.get(folder, {})
            row, names = audit_directory(self.report, directory)
            rows.append(row)
            claimed.update(os.path.join(folder, n) for n in names)
        rows.extend(self.kdb_rows.values())
        loose = [(item.component, item.rel, item.label, unit) for item, unit in self.file_units
                 if item.path not in claimed]
        rows.extend(group(loose))
        return rows


def _merge_units(units):
    first = units[0]
    for unit in units[1:]:
        first.targets += [t for t in unit.targets if t not in first.targets]
        first.problems += unit.problems
    return first


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _nothing_auditable(report: AuditReport, inputs, rows: list[DeviceRow], pure_python: bool) -> None:
    used = {f.component for f in inputs.files}
    for component in inputs.components:
        if component in used:
            continue
        if pure_python:
            report.add(CHECK_INPUT, "info", component,
                       f"no native code, as policy {report.policy} declares (pure_python: the component compiles "
                       "its kernels at run time)")
            continue
        report.add(CHECK_INPUT, "error", component,
                   "nothing auditable found: no ELF library, AMDGPU code object, offload bundle or kernel database",
                   hint="point the audit at the installed libraries (a directory, wheel, .deb or file), or declare "
                        "`validation.pure_python: true` for a component that ships no native code by design")


def _declarations(report: AuditReport, inputs, rows: list[DeviceRow], real: dict[str, str], root: Sysroot) -> list[dict]:
    if not rows and not inputs.declarations:
        return []
    from rocstack.audit import declared

    found = list(inputs.declarations)
    if rows:
        found += declared.from_dpkg(root.root)

    def files_of_row(row: DeviceRow) -> set[str]:
        return {real.get(label, label) for label in row.files}

    audited = set(real.values())
    relevant = [d for d in found if d.files & audited]
    return declared.compare(report, relevant, rows, files_of_row)


def run_audit(paths, targets: list[TargetID] | None = None, policy: AuditPolicy | None = None,
              sysroot: str | os.PathLike = "/", limits: AuditLimits | None = None,
              ld_library_path: list[str] | None = None, component: str | Mapping[str, str] | None = None,
              env: Mapping[str, str] | None = None) -> AuditReport:
    """Audit files, directories, wheels and .deb packages; never raises for a bad file (those become findings).

    Raises RocstackError only for bad arguments: a path that does not exist, a sysroot that is not a directory.
    ``ld_library_path``: the LD_LIBRARY_PATH the libraries will run with (e.g. an image's ENV);
    by default none, so libraries must resolve through RPATH/RUNPATH and the loader's dirs.
    ``component``: judge every input as one component (e.g. all files one package installed),
    or a mapping path -> component name (several components in one audit); by default each path is
    its own. ``env``: the environment the libraries run with (an image's ENV): its ``ROCM_KPACK_PATH``,
    ``ROCM_KPACK_PATH_PREFIX`` and ``ROCM_KPACK_DISABLE`` steer where kpack-split libraries find
    their archives; by default none is set.
    """
    policy = policy or AuditPolicy()
    targets = list(targets or [])
    limits = limits or AuditLimits()
    if not os.path.isdir(sysroot):
        raise RocstackError(f"sysroot {sysroot} is not a directory", "pass --sysroot pointing at a root filesystem")
    root = Sysroot(sysroot)
    report = AuditReport(root.root, policy.name, [str(t) for t in targets])
    with collect_inputs(paths, limits, component) as inputs:
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
        audit = _Audit(report, policy, targets, root, loader, limits, env)
        try:
            for item in inputs.files:
                audit.file(item)
            settle(report, audit.pending)
            audit.gpu_extensions()
            audit.required()
            rows = audit.device_rows()
            if rows:
                from rocstack.audit import coverage

                report.coverage = coverage.build(rows, targets)
                coverage.check(report, report.coverage, targets)
            report.declared = _declarations(report, inputs, rows, audit.real, root)
            _nothing_auditable(report, inputs, rows, policy.pure_python)
        finally:
            loader.close()
    report.checks = {name: "ran" for name in ALL_CHECKS}
    if not targets and not any(f.check == CHECK_ARCH for f in report.findings):
        # (kpack-split libraries are judged for the arches their installed archives hold even then)
        report.checks[CHECK_ARCH] = "skipped: no --arch given (the coverage matrix lists what was found)"
    if not policy.required_symbols:
        report.checks[CHECK_REQUIRED] = "skipped: the policy requires no symbols"
    if not policy.gpu_extensions:
        report.checks[CHECK_GPU_EXT] = "skipped: the policy names no GPU extensions"
    if not policy.preload:
        report.checks[CHECK_PRELOAD] = "skipped: the policy preloads nothing"
    if not any(f.code_objects for f in report.files):
        report.checks[CHECK_CODE_OBJECT] = "skipped: no AMDGPU code objects found"
    return report

