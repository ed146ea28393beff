"""The kpack layer of ``run_audit``: split libraries met while files are read, judged once all are in.

A kpack-split library (TheRock) carries no code objects: they are in ``.kpack`` archives
that the kpack loader finds from the path the library was loaded from and the process
environment. The audit therefore reads each split library as it meets it (its
``.rocm_kpack_ref``, HIPK wrappers and ELF integrity, :mod:`rocstack.audit.kpack`), and
when every input has been read:

1. picks the targets: the ``--arch`` targets, else every arch the installed archives hold
   (and those of the other device code audited), so the matrix has columns;
2. finds every path each library loads from (symlinks resolved, hardlinked copies:
   :mod:`rocstack.audit.kpack_resolve`) and judges it per target as the loader resolves it
   (:func:`rocstack.audit.kpack_coverage.judge`), with the image's ``ROCM_KPACK_*``;
3. turns the resolutions into coverage units (:func:`devicecode.split_library_units`) that
   name the archive each target's code comes from;
4. decodes every archive it opened, and every archive among the inputs, once: each blob
   verified, each code object through the code-object and resource checks.

Findings name files as the report does (the input's label, else the host path, which
``validate`` maps back inside the image). Without ``--arch`` the per-target coverage
findings are warnings: the matrix is informational then, as it is for fat binaries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from rocstack.arches import TargetID, parse_target_id
from rocstack.audit.devicecode import LIBRARY, DeviceRow, split_library_units
from rocstack.audit.elf import ElfError, ElfFile
from rocstack.audit.gpu import check_code_objects
from rocstack.audit.inputs import InputFile
from rocstack.audit.kpack import KpackFinding, SplitLibrary, check_integrity, read_split_library
from rocstack.audit.kpack_archive import ArchiveLimits, iter_code_objects
from rocstack.audit.kpack_coverage import ArchiveCache, judge
from rocstack.audit.kpack_resolve import Candidate, HardlinkIndex, KpackEnv, archive_files, load_paths, physical
from rocstack.audit.report import CHECK_ARCH, CHECK_FATBIN, CHECK_INPUT, AuditReport, FileSummary
from rocstack.audit.segments import dynamic_relocations
from rocstack.audit.sysroot import Sysroot

# each kind of kpack finding under the audit check it belongs to
CHECKS = {"kpack-coverage": CHECK_ARCH, "kpack-env": CHECK_ARCH, "kpack-ref": CHECK_FATBIN,
          "kpack-wrapper": CHECK_FATBIN, "kpack-archive": CHECK_FATBIN, "elf-integrity": CHECK_INPUT}
ARCHIVE_KIND = "kpack-archive"  # FileSummary.kind of an archive
_SHOWN = 4


@dataclass
class _Split:
    label: str
    host: str  # the path it was read from
    lib: SplitLibrary
    row: DeviceRow
    summary: FileSummary
    root: Sysroot  # the root it loads in: the audit's sysroot, or / for an input outside it
    inside: str  # its path inside that root


class KpackLayer:
    def __init__(self, report: AuditReport, sysroot: Sysroot, env: Mapping[str, str] | None,
                 targets: list[TargetID], limits: ArchiveLimits, real: dict[str, str]):
        self.report, self.sysroot, self.targets, self.limits = report, sysroot, list(targets), limits
        self.env = KpackEnv.from_mapping(env or {})
        self.real = real  # label -> real path, shared with the audit (declared vs delivered reads it)
        self.splits: list[_Split] = []
        self.inputs: list[InputFile] = []  # archives named or found among the inputs
        self.cache = ArchiveCache(limits)
        self._labels: dict[str, str] = {}  # real path -> label, made when the inputs are all read
        self._archives_of: dict[int, list[Candidate]] = {}  # id(split) -> its installed archives

    # -- while the inputs are read ------------------------------------------------
    def add_library(self, item: InputFile, elf: ElfFile, summary: FileSummary) -> DeviceRow:
        """Read one split library (ref, wrappers, integrity); its row's units come in :meth:`finish`."""
        try:
            relocations = dynamic_relocations(elf)
        except ElfError:
            relocations = None  # read_split_library says why
        lib = read_split_library(elf, item.label, relocations)
        findings = lib.findings + check_integrity(elf, item.label, relocations)
        for finding in findings:
            self._add(finding, item.label)
        summary.fatbin = {"section_size": 0, "bundles": [], "targets": [], "split": "kpack",
                          "wrappers": [w.kind for w in lib.wrappers], "keys": lib.keys(),
                          "kernel_name": lib.ref.kernel_name if lib.ref else None,
                          "search_paths": list(lib.ref.search_paths) if lib.ref else []}
        row = DeviceRow(item.label, LIBRARY, item.component, [], [item.label])
        root, inside = self._place(item.path)
        self.splits.append(_Split(item.label, item.path, lib, row, summary, root, inside))
        return row

    def add_archive(self, item: InputFile) -> None:
        self.inputs.append(item)

    def _place(self, path: str) -> tuple[Sysroot, str]:
        """The root a file loads in and its path there: inside the sysroot when it lies under it."""
        absolute = os.path.abspath(path)
        if not self.sysroot.is_host and absolute.startswith(self.sysroot.root.rstrip("/") + "/"):
            return self.sysroot, "/" + os.path.relpath(absolute, self.sysroot.root)
        return Sysroot("/"), absolute

    # -- once every input is read -------------------------------------------------
    def finish(self, other_targets: list[str]) -> None:
        """Judge every split library, fill its row, then decode the archives; ``other_targets``: the
        targets of the other device code audited (columns of the matrix without ``--arch``)."""
        for label, real in self.real.items():
            self._labels.setdefault(real, label)
        roots: dict[str, list[_Split]] = {}
        for split in self.splits:
            roots.setdefault(split.root.root, []).append(split)
        env_said = False
        for splits in roots.values():
            root = splits[0].root
            targets = self.targets or self._discovered(root, splits, other_targets)
            names = [str(t) for t in targets]
            judged = {s.inside: s.lib for s in splits if self.targets or self._has_archives(s)}
            coverage = judge(judged, targets, root, self.env, self._hardlinks(root, splits), limits=self.limits,
                             cache=self.cache)
            # a load path that is no input (a hardlinked copy found in the root): the finding is the library's
            library_of = {r.load_path: r.library for r in coverage.resolutions}
            labels = {s.inside: s.label for s in splits}
            for finding in coverage.findings:
                if finding.kind == "kpack-env":
                    if env_said:
                        continue  # one image, one environment: said once whatever the number of roots
                if finding.kind == "kpack-coverage" and not self.targets and finding.severity == "error":
                    finding = KpackFinding("warning", finding.kind, finding.where,
                                           finding.message + " (no --arch given: judged for the arches installed)",
                                           finding.hint, finding.evidence)
                where = finding.where
                if not where.startswith("/"):
                    self._add(finding, where)
                    continue
                label = self._labels.get(os.path.realpath(physical(root, where)[1]))
                self._add(finding, label or labels.get(library_of.get(where, ""), where))
            env_said = env_said or any(f.kind == "kpack-env" for f in coverage.findings)
            for split in splits:
                if split.inside in judged:
                    split.row.units = split_library_units(split.lib, split.inside, coverage, names)
                else:
                    split.row.units = self._uninstalled(split, names)
                self._fill(split)
        self._decode_archives()

    def _has_archives(self, split: _Split) -> bool:
        return split.lib.ref is None or bool(self._installed(split))

    def _installed(self, split: _Split) -> list[Candidate]:
        """The archive files its search paths find, whatever the arch (read once per library)."""
        if split.lib.ref is None:
            return []
        if id(split) not in self._archives_of:
            self._archives_of[id(split)] = [c for path in load_paths(split.root, split.inside)
                                            for c in archive_files(split.lib.ref, path, self.env, split.root)]
        return self._archives_of[id(split)]

    def _discovered(self, root: Sysroot, splits: list[_Split], other_targets: list[str]) -> list[TargetID]:
        """Without --arch: every processor the installed archives hold, and the other device code's."""
        found = {t.split(":")[0] for t in other_targets}
        for split in splits:
            for cand in self._installed(split):
                archive = self.cache.get(cand)
                if archive is not None and archive.usable:
                    found.update(a.split(":")[0] for a in archive.gfx_arches)
        out = []
        for name in sorted(found):
            try:
                out.append(parse_target_id(name, known_only=False))
            except Exception:  # noqa: BLE001 - an arch name no target ID parser takes: nothing to judge for it
                continue
        return out

    def _uninstalled(self, split: _Split, names: list[str]):
        """Units of a library none of whose archives is installed (judged without --arch only)."""
        from rocstack.audit.devicecode import KPACK, DeviceUnit

        tried = ", ".join(split.lib.ref.search_paths[:_SHOWN])
        self.report.add(CHECK_ARCH, "error", split.label,
                        f"its device code is split out into kpack archives, and none is installed at its search paths "
                        f"({tried}, from {os.path.dirname(split.inside)}): loading its code fails on every GPU "
                        "(hipErrorFileNotFound)",
                        evidence="; ".join(f"{k}={v}" for k, v in self.env.settings),
                        hint="install the device package of your GPU beside it (TheRock: amd-torch-device-<arch> for "
                             "torch, rocm-sdk-device-<arch> for the ROCm libraries); --arch names the one missing")
        missing = {"status": "missing", "archives": [], "detail": "no archive installed at its search paths"}
        return [DeviceUnit(KPACK, key, [], [], {t: dict(missing) for t in names}) for key in split.lib.keys()]

    def _hardlinks(self, root: Sysroot, splits: list[_Split]) -> HardlinkIndex | None:
        """Every other link of the libraries that have some; searched in the image, or near the library on /."""
        wanted: dict[tuple[int, int], int] = {}
        under: list[str] = []
        for split in splits:
            try:
                st = os.stat(physical(root, split.inside)[1])
            except OSError:
                continue
            if st.st_nlink > 1:
                wanted[(st.st_dev, st.st_ino)] = st.st_nlink
                under.append(_neighbourhood(split.inside) if root.is_host else "/")
        if not wanted:
            return None
        under = sorted(set(under))
        index = HardlinkIndex.build(root, under, wanted)
        for split in splits:
            try:
                st = os.stat(physical(root, split.inside)[1])
            except OSError:
                continue
            found = len(index.by_inode.get((st.st_dev, st.st_ino), ()))
            if st.st_nlink > 1 and found < st.st_nlink:
                self.report.add(CHECK_ARCH, "info", split.label,
                                f"has {st.st_nlink} hard links, {found} of them under {', '.join(under)}: the others "
                                "are paths it may be loaded from that were not judged",
                                hint="audit with --sysroot set to the root filesystem that holds them all")
        return index

    def _fill(self, split: _Split) -> None:
        """The summary's targets; the archives named as the report names files (their labels), and read
        for the row."""
        units = split.row.units
        split.summary.fatbin["targets"] = sorted({t for u in units for t in u.targets})
        for unit in units:
            for verdict in (unit.resolved or {}).values():
                verdict["archives"] = [self._label_of(physical(split.root, inside)[1]) for inside in verdict["archives"]]
                split.row.files += [label for label in verdict["archives"] if label not in split.row.files]

    def _decode_archives(self) -> None:
        """Every archive opened (by the resolution) or named (among the inputs), decoded once."""
        for item in self.inputs:
            root, inside = self._place(item.path)
            self.cache.get(Candidate(inside, physical(root, inside)[1], "input"))
        for host, archive in sorted(self.cache.opened.items()):
            label = self._label_of(host)
            summary = FileSummary(label, ARCHIVE_KIND, archive.size)
            summary.code_objects = [c.code_object for c in iter_code_objects(archive, self.limits)
                                    if c.code_object is not None]
            check_code_objects(self.report, label, summary.code_objects)
            for finding in archive.findings:
                self._add(finding, label)
            self.report.files.append(summary)

    # -- naming -------------------------------------------------------------------
    def _label_of(self, host: str) -> str:
        """The report's name for a host path: the input's label when it was one, else the path itself."""
        real = os.path.realpath(host)
        label = self._labels.get(real)
        if label is None:
            label = self._labels[real] = host
            self.real.setdefault(host, real)
        return label

    def _add(self, finding: KpackFinding, file: str) -> None:
        self.report.add(CHECKS.get(finding.kind, CHECK_FATBIN), finding.severity, file, finding.message,
                        finding.evidence, finding.hint)


def _neighbourhood(inside: str) -> str:
    """Where a library's hardlinked copies live on a host: its site-packages, else two levels above its folder
    (``/opt/rocm/lib/x.so`` -> ``/opt``: a devel tree beside the runtime one)."""
    parts = inside.split("/")
    for index in range(len(parts) - 1, 0, -1):
        if parts[index].endswith("-packages"):
            return "/".join(parts[:index + 1])
    folder = os.path.dirname(os.path.dirname(os.path.dirname(inside)))
    return folder if folder not in ("", "/") else os.path.dirname(inside)
