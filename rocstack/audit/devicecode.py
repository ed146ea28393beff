"""Where device code lives: one model for every place the HIP runtime (or a library) loads it from.

A *unit* is what gets loaded as a whole and must hold a code object for the GPU
it runs on, or the load fails:

- ``fatbin``: one offload bundle in a host library's ``.hip_fatbin``. The runtime
  registers each ``.hipFatBinSegment`` wrapper's bundle on its own, so a kernel in a
  bundle without the device's arch fails even when another bundle has it;
- ``bundle-file``: a standalone bundle file (plain or CCOB, any extension) that a
  library hands to ``hipModuleLoad``;
- ``code-object``: a bare AMDGPU code object file;
- ``kernel-database``: an entry of a kernel database (a Tensile library index and the
  files it names, a MIOpen ``.kdb`` row);
- ``kpack``: code objects split out of a host library into ``.kpack`` archives
  (TheRock). The archive reader is :mod:`rocstack.audit.kpack`; :func:`split_library_units`
  is where its resolution plugs in, one unit per HIPK wrapper (``co_index``).

A *row* of the coverage matrix groups units: a library (every unit must cover the
arch), a kernel set (per-arch files of one kernel: one covering file is enough), a
kernel database (the index for the arch must exist and be complete).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rocstack.audit.codeobject import CodeObject, parse_code_object
from rocstack.audit.elf import SHT_NOBITS, ElfError, ElfFile
from rocstack.audit.fatbin import BundleError, iter_bundles
from rocstack.audit.magic import FATBIN_SECTION
from rocstack.audit.report import CHECK_FATBIN, AuditReport

FATBIN = "fatbin"
BUNDLE_FILE = "bundle-file"
CODE_OBJECT = "code-object"
KERNEL_DATABASE = "kernel-database"
KPACK = "kpack"
SOURCES = (FATBIN, BUNDLE_FILE, CODE_OBJECT, KERNEL_DATABASE, KPACK)

LIBRARY, KERNEL_SET, DATABASE = "library", "kernel-set", "kernel-database"
EVERY_UNIT, ANY_UNIT = "every-unit", "any-unit"

SEGMENT_SECTION = ".hipFatBinSegment"
KPACK_REF_SECTION = ".rocm_kpack_ref"
_WRAPPER = struct.Struct("<IIQQ")
HIPF, HIPK = 0x48495046, 0x4B504948


@dataclass
class DeviceUnit:
    source: str  # one of SOURCES
    where: str  # "bundle 3 at +0x1000", "file", "TensileLibrary_lazy_gfx942.dat", ...
    targets: list[str] = field(default_factory=list)  # target IDs of the code objects it holds
    problems: list[str] = field(default_factory=list)  # why it cannot be trusted for its targets

    def to_dict(self) -> dict:
        return {"source": self.source, "where": self.where, "targets": self.targets, "problems": self.problems}


@dataclass
class DeviceRow:
    name: str  # library path, kernel-set key (arch replaced by {arch}), kernel-database directory
    kind: str  # LIBRARY, KERNEL_SET, DATABASE
    component: str  # the audited input (path argument, wheel, .deb) it belongs to
    units: list[DeviceUnit] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # labels of the files it was read from

    @property
    def rule(self) -> str:
        return EVERY_UNIT if self.kind == LIBRARY else ANY_UNIT

    @property
    def sources(self) -> list[str]:
        return sorted({u.source for u in self.units})


@dataclass
class Wrapper:
    magic: int
    version: int
    reserved: int  # the co_index of a HIPK (kpack) wrapper

    @property
    def kind(self) -> str:
        return {HIPF: "HIPF", HIPK: "HIPK"}.get(self.magic, f"{self.magic:#010x}")


def read_wrappers(elf: ElfFile) -> list[Wrapper]:
    """The 24-byte wrappers of ``.hipFatBinSegment`` (magic, version, pointer, reserved).

    The pointer is filled by a dynamic relocation at load time; what matters here is how
    many registrations there are and whether they are HIPF (fat binary) or HIPK (kpack).
    """
    section = elf.section(SEGMENT_SECTION)
    if section is None or section.type == SHT_NOBITS:
        return []
    data = elf.section_bytes(section)
    return [Wrapper(magic, version, reserved)
            for magic, version, _pointer, reserved in _WRAPPER.iter_unpack(data[: len(data) // 24 * 24])]


def is_split_library(elf: ElfFile, wrappers: list[Wrapper]) -> bool:
    """A kpack-split host library: its code objects are in .kpack archives, not in .hip_fatbin."""
    fatbin = elf.section(FATBIN_SECTION)
    return (elf.section(KPACK_REF_SECTION) is not None or any(w.magic == HIPK for w in wrappers)
            or (fatbin is not None and fatbin.type == SHT_NOBITS))


def split_library_units(label: str, wrappers: list[Wrapper]) -> list[DeviceUnit]:
    """Units of a kpack-split library: where rocstack.audit.kpack's resolution plugs in.

    Until the archives are resolved (issue 16) each HIPK wrapper is a unit whose code
    objects could not be located: never a pass, never "no GPU code".
    """
    units = [w for w in wrappers if w.magic == HIPK] or wrappers
    return [DeviceUnit(KPACK, f"wrapper {i} (co_index {w.reserved})", [],
                       ["code objects split out into .kpack archives (TheRock kpack); resolving them is not "
                        "part of this audit yet"]) for i, w in enumerate(units or [Wrapper(HIPK, 0, 0)])]


def code_object_targets(objects: list[CodeObject], declared: list[str | None] | None = None) -> list[str]:
    out = []
    for index, obj in enumerate(objects):
        target = obj.target_id or (declared[index] if declared else None)
        if target and target not in out:
            out.append(target)
    return out


def _bundle_code_objects(report: AuditReport, label: str, bundle, index: int) -> tuple[list[CodeObject], list[str]]:
    """Decode every device entry of one bundle; damaged entries become findings."""
    objects, targets = [], []
    for entry, buf, start, available in bundle.code_objects():
        where = f"bundle {index} entry {entry.id}"
        try:
            obj = parse_code_object(buf, start, available, where, f"{label} {where}",
                                    full_size=entry.size if available < entry.size else None)
        except ElfError as exc:
            report.add(CHECK_FATBIN, "error", label, f"{where} is not a valid AMDGPU code object: {exc}",
                       hint="rebuild it; the offload bundle is corrupt")
            continue
        declared = entry.target_id
        if obj.processor is None and declared:
            # arch newer than rocstack's table: the bundle entry id still names it exactly
            obj.processor, obj.target_id = declared.split(":")[0], declared
        if declared and obj.target_id and declared.split(":")[0] != obj.processor:
            report.add(CHECK_FATBIN, "error", label, f"{where} claims {declared} but its code object is for {obj.target_id}",
                       hint="the bundle was assembled from mismatched files: rebuild it")
        objects.append(obj)
        targets.append(declared or obj.target_id or "?")
    return objects, targets


def audit_bundles(report: AuditReport, label: str, buf, start: int, size: int, max_uncompressed: int,
                  source: str, what: str, verify_hash: bool = False) -> tuple[dict, list[CodeObject], list[DeviceUnit]]:
    """Every bundle in ``buf[start:start+size]``: summary, decoded code objects, one unit per bundle."""
    bundles, objects, units = [], [], []
    try:
        for index, bundle in enumerate(iter_bundles(buf, start, size, max_uncompressed, verify_hash)):
            decoded, targets = _bundle_code_objects(report, label, bundle, index)
            bundles.append(bundle.summary())
            if bundle.compression and bundle.compression["hash_ok"] is False:
                report.add(CHECK_FATBIN, "warning", label,
                           f"compressed bundle {index} at +{bundle.offset:#x}: its MD5 hash does not match the "
                           "decompressed data", hint="the bundle was altered after bundling: rebuild it")
            objects.extend(decoded)
            where = f"bundle {index} at +{bundle.offset:#x}" if source == FATBIN else "file"
            units.append(DeviceUnit(source, where, list(dict.fromkeys(targets))))
    except BundleError as exc:
        report.add(CHECK_FATBIN, "error", label, f"{what} is corrupt after {len(bundles)} good bundles: {exc}",
                   hint="rebuild or re-download it; a truncated or damaged bundle fails to load on the GPU")
        units.append(DeviceUnit(source, f"bundle {len(bundles)}", [], [f"corrupt: {exc}"]))
    summary = {"section_size": size, "bundles": bundles,
               "targets": sorted({t for u in units for t in u.targets})}
    if bundles and not summary["targets"]:
        report.add(CHECK_FATBIN, "error", label, f"{what} holds {len(bundles)} bundles but no GPU code object",
                   hint="the build ran without any --offload-arch: set the arch list (PYTORCH_ROCM_ARCH, GPU_TARGETS)")
    return summary, objects, units


def audit_library_fatbin(report: AuditReport, label: str, elf: ElfFile, max_uncompressed: int,
                         verify_hash: bool = False) -> tuple[dict, list[CodeObject], list[DeviceUnit]]:
    """The units of a host library: its fat binary's bundles, or its kpack wrappers."""
    wrappers = read_wrappers(elf)
    if is_split_library(elf, wrappers):
        summary = {"section_size": 0, "bundles": [], "targets": [], "split": "kpack",
                   "wrappers": [w.kind for w in wrappers]}
        units = split_library_units(label, wrappers)
        if any(u.problems and not u.targets for u in units):
            report.add(CHECK_FATBIN, "warning", label,
                       f"its device code is split out into .kpack archives ({len(units)} wrappers): not verified",
                       evidence="; ".join(sorted({p for u in units for p in u.problems})),
                       hint="audit with a rocstack that resolves kpack archives (issue 16)")
        return summary, [], units
    section = elf.section(FATBIN_SECTION)
    summary, objects, units = audit_bundles(report, label, elf.buf, elf.base + section.offset, section.size,
                                            max_uncompressed, FATBIN, FATBIN_SECTION, verify_hash)
    summary["wrappers"] = len(wrappers)
    if wrappers and len(wrappers) < len(summary["bundles"]):
        # -fgpu-rdc links every translation unit into one bundle that all wrappers share;
        # more bundles than wrappers means some bundles are never registered
        report.add(CHECK_FATBIN, "info", label,
                   f"{len(summary['bundles'])} bundles but {len(wrappers)} .hipFatBinSegment wrappers: some bundles "
                   "are never registered by the HIP runtime")
    return summary, objects, units


def audit_code_object_file(label: str, buf) -> tuple[CodeObject, DeviceUnit]:
    """A bare code object file; ElfError propagates (the caller reports the file as corrupt)."""
    obj = parse_code_object(buf, 0, None, "file", label)
    return obj, DeviceUnit(CODE_OBJECT, "file", [obj.target_id] if obj.target_id else [],
                           [] if obj.target_id else [f"unknown EF_AMDGPU_MACH {obj.mach:#04x}"])
