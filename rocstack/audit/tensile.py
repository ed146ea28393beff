"""Tensile kernel databases: rocBLAS / hipBLASLt / hipSPARSELt ``library/`` directories.

Layout (Tensile's lazy loading, as Debian's ROCm 7 packages ship it): one index per
arch, ``TensileLibrary_lazy_<arch>.dat`` (msgpack); its leaves are ``Placeholder``
entries naming a library ``P`` (``TensileLibrary_Type_HH_..._gfx942``) that the runtime
loads on first use from ``P.dat`` (msgpack solutions) plus the code objects ``P.co``
(assembly kernels; a compressed offload bundle in ROCm 7) and the source kernels,
one file per xnack mode: ``P-xnack+.hsaco`` when ``P`` ends with the arch,
``P_gfx90a-xnack+.hsaco`` for the arch-independent ``..._fallback`` libraries. A GPU whose arch has no index gets no GEMM at all
(rocBLAS: "Cannot read .../TensileLibrary_lazy_<arch>.dat"); a lazy entry (Tensile's PlaceholderLibrary) whose files
are missing fails the first call that needs it.

Every ``.dat`` is checked to be msgpack by skipping over it in C (no Python objects,
memory bounded by the largest file); only the small indexes are decoded.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field

import msgpack

from rocstack.audit.devicecode import DATABASE, KERNEL_DATABASE, DeviceRow, DeviceUnit
from rocstack.audit.report import CHECK_INPUT, CHECK_IO, AuditReport

INDEX = re.compile(r"^Tensile(?:Lite)?Library(?:_lazy)?_(?P<arch>gfx[0-9a-f]+)\.dat$")
# a source-kernel file's feature suffix: P_gfx90a-xnack+.hsaco, P_CU104_gfx90a-xnack-.hsaco
_FEATURE_SUFFIX = re.compile(r"(?:[-:](?:xnack|sramecc)[+-])+$")
_MAX_INDEX_BYTES = 64 << 20  # an index is kilobytes to a few megabytes; decode nothing larger
_MAX_DAT_BYTES = 1 << 30  # one solution library (hipBLASLt's largest is 9 MB)
_SHOWN = 5


@dataclass
class TensileDirectory:
    path: str  # host path of the directory
    label: str  # its name in the report
    component: str
    dat_files: list[str] = field(default_factory=list)  # file names (no directory)
    units: dict[str, DeviceUnit] = field(default_factory=dict)  # file name -> unit of a code-object/bundle file

    @property
    def indexes(self) -> list[str]:
        return sorted(n for n in self.dat_files if INDEX.match(n))


def is_msgpack(path: str, size: int) -> str | None:
    """None when the file is one well-formed msgpack object, else the problem."""
    if size > _MAX_DAT_BYTES:
        return f"{size} bytes, over the {_MAX_DAT_BYTES}-byte limit for one Tensile library"
    try:
        with open(path, "rb") as handle:
            unpacker = msgpack.Unpacker(handle, read_size=1 << 20, max_buffer_size=max(size, 1 << 20))
            unpacker.skip()
            if handle.read(1) or unpacker.tell() != size:
                return f"not msgpack (one object ends at byte {unpacker.tell()} of {size}, then garbage)"
    except msgpack.OutOfData:
        return f"not msgpack, or truncated (the object runs past the {size}-byte file)"
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        return f"not msgpack ({type(exc).__name__}: {exc})"
    return None


def _walk_index(node, lazy_names: set[str], processors: set[str], depth: int = 0) -> None:
    if depth > 256:
        raise ValueError("index nests deeper than 256 levels")
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "Placeholder" and isinstance(node.get("value"), str):
            lazy_names.add(node["value"])
            return
        if kind == "Processor" and isinstance(node.get("value"), str):
            processors.add(node["value"])
        for value in node.values():
            _walk_index(value, lazy_names, processors, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _walk_index(value, lazy_names, processors, depth + 1)


def _read_index(path: str) -> tuple[set[str], set[str]]:
    size = os.path.getsize(path)
    if size > _MAX_INDEX_BYTES:
        raise ValueError(f"index is {size} bytes, over the {_MAX_INDEX_BYTES}-byte limit")
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        data = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises ValueError, FormatError, StackError, ExtraData, TypeError (a map key
        # that is an array or a map cannot be a Python dict key), ...
        raise ValueError(f"not msgpack Python can read ({type(exc).__name__}: {exc})") from None
    lazy_names: set[str] = set()
    processors: set[str] = set()
    _walk_index(data, lazy_names, processors)
    return lazy_names, processors


def _source_kernels(directory: TensileDirectory) -> dict[str, list[str]]:
    """File stem without its feature suffix -> source-kernel files (one per xnack mode)."""
    out: dict[str, list[str]] = {}
    for name in sorted(directory.units):
        if name.endswith(".hsaco"):
            out.setdefault(_FEATURE_SUFFIX.sub("", name[:-len(".hsaco")]), []).append(name)
    return out


def _unit_holds(unit: DeviceUnit, arch: str) -> bool:
    return any(t.split(":")[0] == arch for t in unit.targets)


def audit_directory(report: AuditReport, directory: TensileDirectory) -> tuple[DeviceRow, set[str]]:
    """The database row (one unit per arch index) and the file names its indexes account for."""
    row = DeviceRow(directory.label, DATABASE, directory.component)
    claimed: set[str] = set()
    sources = _source_kernels(directory)
    for name in sorted(directory.dat_files):
        path = os.path.join(directory.path, name)
        label = os.path.join(directory.label, name)
        try:
            problem = is_msgpack(path, os.path.getsize(path))
        except OSError as exc:
            io = exc.errno in (errno.EACCES, errno.EIO, errno.EPERM)
            report.add(CHECK_IO if io else CHECK_INPUT, "error", label, f"cannot read: {exc.strerror or exc}",
                       hint="check the file's permissions; the library fails when it needs this file")
            continue
        if problem:
            report.add(CHECK_INPUT, "error", label, f"Tensile library file {problem}",
                       hint="reinstall the package: the library fails to load this kernel database")
    for name in directory.indexes:
        match = INDEX.match(name)
        arch = match["arch"]
        unit = DeviceUnit(KERNEL_DATABASE, name, [arch])
        row.units.append(unit)
        row.files.append(os.path.join(directory.label, name))
        claimed.add(name)
        try:
            lazy_names, processors = _read_index(os.path.join(directory.path, name))
        except (OSError, ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            unit.problems.append(f"index unreadable: {type(exc).__name__}: {exc}")
            continue
        if processors and arch not in processors:
            unit.problems.append(f"index is named for {arch} but selects {', '.join(sorted(processors))}")
        missing_dat, missing_code, wrong_arch = [], [], []
        for lazy_name in sorted(lazy_names):
            claimed.add(lazy_name + ".dat")
            if lazy_name + ".dat" not in directory.dat_files:
                missing_dat.append(lazy_name + ".dat")
            # assembly kernels P.co; source kernels P[-xnack±].hsaco when P names the arch (P_..._gfx90a),
            # P_<arch>[-xnack±].hsaco when it does not (the arch-independent "_fallback" libraries)
            names = (([lazy_name + ".co"] if lazy_name + ".co" in directory.units else [])
                     + sources.get(lazy_name, []) + sources.get(f"{lazy_name}_{arch}", []))
            claimed.update(names)
            if not names:
                missing_code.append(lazy_name + ".co")
            for code in names:
                if not _unit_holds(directory.units[code], arch) and not directory.units[code].problems:
                    wrong_arch.append(f"{code} ({', '.join(directory.units[code].targets) or 'no code object'})")
        for what, items in (("solution libraries missing", missing_dat), ("code objects missing", missing_code),
                            (f"code objects without {arch} code", wrong_arch)):
            if items:
                more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
                unit.problems.append(f"{len(items)} of {len(lazy_names)} {what}: {', '.join(items[:_SHOWN])}{more}")
    return row, claimed
