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
  (TheRock): one unit per code object the library registers (``<kernel_name>#<co_index>``),
  covered for a target when the kpack loader, from every path the library loads from,
  finds it in the archive it picks (:mod:`rocstack.audit.kpack_layer` runs the resolution,
  :func:`split_library_units` turns it into units).

A *row* of the coverage matrix groups units: a library (every unit must cover the
arch), a kernel set (per-arch files of one kernel: one covering file is enough), a
kernel database (the index for the arch must exist and be complete).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rocstack.audit.codeobject import CodeObject, parse_code_object
from rocstack.audit.elf import ElfError, ElfFile
from rocstack.audit.bundles import iter_bundles
from rocstack.audit.fatbin import BundleError
from rocstack.audit.kpack import SplitLibrary, read_wrappers
from rocstack.audit.magic import FATBIN_SECTION
from rocstack.audit.report import CHECK_FATBIN, AuditReport

if TYPE_CHECKING:  # the kpack archive reader (zstandard) loads only when a split library is met
    from rocstack.audit.kpack_coverage import KpackCoverage, Resolution

FATBIN = "fatbin"
BUNDLE_FILE = "bundle-file"
CODE_OBJECT = "code-object"
KERNEL_DATABASE = "kernel-database"
KPACK = "kpack"
SOURCES = (FATBIN, BUNDLE_FILE, CODE_OBJECT, KERNEL_DATABASE, KPACK)

LIBRARY, KERNEL_SET, DATABASE = "library", "kernel-set", "kernel-database"
EVERY_UNIT, ANY_UNIT = "every-unit", "any-unit"

@dataclass
class DeviceUnit:
    source: str  # one of SOURCES
    where: str  # "bundle 3 at +0x1000", "file", "TensileLibrary_lazy_gfx942.dat", ...
    targets: list[str] = field(default_factory=list)  # target IDs of the code objects it holds
    problems: list[str] = field(default_factory=list)  # why it cannot be trusted for its targets
    # kpack: the loader's verdict per judged image target, {target: {status, archives, detail}}; the
    # coverage of such a unit is what the loader resolves, not what its targets would run on
    resolved: dict[str, dict] | None = None

    def to_dict(self) -> dict:
        out = {"source": self.source, "where": self.where, "targets": self.targets, "problems": self.problems}
        if self.resolved is not None:
            out["resolved"] = self.resolved
        return out


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


_FAILED = {"no-archive": "no archive found at the search paths", "no-arch": "no archive lists a compatible target",
           "disabled": "ROCM_KPACK_DISABLE is set"}


def _key_status(row: Resolution, key: str) -> tuple[bool, str]:
    """(found, why not) for one code object in one loader resolution."""
    if row.status == "ok" or (row.status in ("shadowed", "missing-kernels") and key not in row.missing):
        return True, ""
    if row.status == "shadowed":
        return False, f"{row.archive} shadows {row.fallback}, which has it"
    if row.status == "missing-kernels":
        return False, f"{row.archive} ({row.arch}) lacks it"
    return False, _FAILED.get(row.status, row.status)


def split_library_units(lib: SplitLibrary, inside: str, coverage: KpackCoverage, targets: list[str]) -> list[DeviceUnit]:
    """Units of a kpack-split library: one per code object it registers, judged per image target.

    ``inside``: the library's path inside the root, as ``coverage`` (kpack_coverage.judge) knows
    it; ``targets``: the image targets it was judged for. A unit is covered for a target when,
    in the target's default mode and from every path the library loads from, the loader finds
    its key in the archive it picks; partial when only some load paths do (a hardlinked copy).
    A library whose ref cannot be read registers nothing the loader can find: never "no GPU code".
    """
    keys = lib.keys()
    if lib.ref is None or not keys:
        problems = sorted({f.message for f in lib.findings if f.severity == "error"}) or \
            ["its kpack metadata names no code object"]
        wrappers = [w for w in lib.wrappers if w.is_kpack] or lib.wrappers
        wheres = [f"wrapper {w.index} (co_index {w.co_index})" for w in wrappers] or [".rocm_kpack_ref"]
        missing = {"status": "missing", "archives": [], "detail": problems[0]}
        return [DeviceUnit(KPACK, where, [], problems, {t: dict(missing) for t in targets}) for where in wheres]
    held = coverage.held_targets(inside, keys)
    units = []
    for key in keys:
        resolved = {}
        for target in targets:
            rows = [r for r in coverage.rows(inside, target) if not r.device.mode]
            outcomes = [(r, *_key_status(r, key)) for r in rows]
            good = [r for r, found, _why in outcomes if found]
            bad = [f"from {r.load_path}: {why}" for r, found, why in outcomes if not found]
            status = "covered" if good and not bad else "partial" if good else "missing"
            resolved[target] = {"status": status, "archives": sorted({r.archive for r in good if r.archive}),
                                "detail": "; ".join(dict.fromkeys(bad))}
        units.append(DeviceUnit(KPACK, key, held.get(key, []), [], resolved))
    return units


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
    """The units of a host library's embedded fat binary (a kpack-split one goes to kpack_layer)."""
    wrappers = read_wrappers(elf)
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
