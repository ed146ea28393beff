"""Checks 5 and 6: HIP fat binaries (targets, arch coverage) and AMDGPU code object resources."""

from __future__ import annotations

from rocstack.arches import TargetID, all_arches
from rocstack.audit import demangle
from rocstack.audit.codeobject import CodeObject, parse_code_object
from rocstack.audit.elf import ElfError, ElfFile
from rocstack.audit.fatbin import BundleError, iter_bundles
from rocstack.audit.report import CHECK_ARCH, CHECK_CODE_OBJECT, CHECK_FATBIN, AuditReport

FATBIN_SECTION = ".hip_fatbin"
_SHOWN = 10


def audit_fatbin(report: AuditReport, label: str, elf: ElfFile, max_uncompressed: int) -> tuple[dict, list[CodeObject]]:
    """Parse every bundle of ``.hip_fatbin``; returns the summary and the decoded code objects."""
    section = elf.section(FATBIN_SECTION)
    bundles, objects, targets = [], [], []
    try:
        for index, bundle in enumerate(iter_bundles(elf.buf, elf.base + section.offset, section.size,
                                                    max_uncompressed)):
            bundles.append(bundle.summary())
            if bundle.compression and not bundle.compression["hash_ok"]:
                report.add(CHECK_FATBIN, "warning", label,
                           f"compressed bundle {index} at +{bundle.offset:#x}: its MD5 hash does not match the "
                           "decompressed data", hint="the fat binary was altered after bundling: rebuild it")
            for entry in bundle.entries:
                if entry.is_host or entry.size == 0:
                    continue
                where = f"bundle {index} entry {entry.id}"
                try:
                    obj = parse_code_object(bundle.payload, bundle.payload_base + entry.offset, entry.size,
                                            where, f"{label} {where}")
                except ElfError as exc:
                    report.add(CHECK_FATBIN, "error", label, f"{where} is not a valid AMDGPU code object: {exc}",
                               hint="rebuild the library; the fat binary is corrupt")
                    continue
                declared = entry.target_id
                if obj.processor is None and declared:
                    # arch newer than rocstack's registry: the bundle entry id still names it exactly
                    obj.processor, obj.target_id = declared.split(":")[0], declared
                    obj.problems = [p for p in obj.problems if not p.startswith("unknown EF_AMDGPU_MACH")]
                if declared and obj.target_id and declared.split(":")[0] != obj.processor:
                    report.add(CHECK_FATBIN, "error", label,
                               f"{where} claims {declared} but its code object is for {obj.target_id}",
                               hint="the bundle was assembled from mismatched files: rebuild it")
                objects.append(obj)
                targets.append(declared or obj.target_id or "?")
    except BundleError as exc:
        report.add(CHECK_FATBIN, "error", label, f"{FATBIN_SECTION} is corrupt after {len(bundles)} good bundles: {exc}",
                   hint="rebuild the library; a truncated or damaged fat binary fails to load on the GPU")
    summary = {"section_size": section.size, "bundles": bundles, "targets": sorted(set(targets))}
    if not targets and bundles:
        report.add(CHECK_FATBIN, "error", label, f"{FATBIN_SECTION} holds {len(bundles)} bundles but no GPU code object",
                   hint="the build ran without any --offload-arch: set the arch list (PYTORCH_ROCM_ARCH, GPU_TARGETS)")
    return summary, objects


# LLVM AMDGPUUsage, "Generic processors": the specific processors a generic code object runs on.
# Only a HIP runtime that understands generic code objects (code object v6) loads them.
GENERIC_MEMBERS = {
    "gfx9-generic": ("gfx900", "gfx902", "gfx904", "gfx906", "gfx909", "gfx90c"),
    "gfx9-4-generic": ("gfx940", "gfx941", "gfx942", "gfx950"),
    "gfx10-1-generic": ("gfx1010", "gfx1011", "gfx1012", "gfx1013"),
    "gfx10-3-generic": ("gfx1030", "gfx1031", "gfx1032", "gfx1033", "gfx1034", "gfx1035", "gfx1036"),
    "gfx11-generic": ("gfx1100", "gfx1101", "gfx1102", "gfx1103", "gfx1150", "gfx1151", "gfx1152", "gfx1153"),
    "gfx12-generic": ("gfx1200", "gfx1201"),
}


def generic_runs_on(target: TargetID, device: TargetID) -> bool:
    if device.processor not in GENERIC_MEMBERS.get(target.processor, ()):
        return False
    return TargetID(device.processor, target.features).runs_on(device)


def check_coverage(report: AuditReport, label: str, objects: list[CodeObject], requested: list[TargetID]) -> None:
    """Every requested GPU must find a code object that runs on it, or the HIP runtime refuses the module."""
    built = [(obj.target_id, obj.target()) for obj in objects if obj.target() is not None]
    names = sorted({t for t, _ in built})
    for device in requested:
        if any(target.runs_on(device) for _, target in built):
            continue
        generic = sorted({t for t, target in built if generic_runs_on(target, device)})
        if generic:
            report.add(CHECK_ARCH, "info", label,
                       f"{device} is covered only by generic code objects ({', '.join(generic)})",
                       evidence="built for: " + ", ".join(names),
                       hint="the HIP runtime must support generic code objects (code object v6); "
                            f"build --offload-arch={device.processor} for older runtimes")
            continue
        same_arch = [t for t, target in built if target.processor == device.processor]
        why = (f"the {device.processor} code objects ({', '.join(sorted(set(same_arch)))}) need other xnack/sramecc "
               f"settings than {device}" if same_arch else f"no code object for {device.processor}")
        report.add(
            CHECK_ARCH, "error", label,
            f"no code object runs on {device}: loading it there fails with hipErrorNoBinaryForGpu "
            f"('Unable to find code object for all current devices'); {why}",
            evidence="built for: " + (", ".join(names) or "nothing"),
            hint=f"rebuild with --offload-arch={device.processor} (PYTORCH_ROCM_ARCH / GPU_TARGETS / HIP_ARCHITECTURES)",
        )


def check_code_objects(report: AuditReport, label: str, objects: list[CodeObject]) -> None:
    """Resource findings, one per kind of problem per file (a fat binary repeats kernels per target)."""
    arches = all_arches()
    for obj in objects:
        prefix = "" if obj.where == "file" else f"{obj.where}: "
        for problem in obj.problems:
            report.add(CHECK_CODE_OBJECT, "warning", label, prefix + problem)
    over_lds, spilling, scratch, dynamic = [], [], [], []
    for obj in objects:
        arch = arches.get(obj.processor or "")
        for k in obj.kernels:
            if arch and k.lds_bytes > arch.lds_bytes_per_workgroup:
                over_lds.append((obj, k, f"{k.lds_bytes} B > {arch.lds_bytes_per_workgroup} B"))
            if k.vgpr_spills or k.sgpr_spills:
                spilling.append((obj, k, f"{k.vgpr_spills} VGPR/{k.sgpr_spills} SGPR spills"))
            elif k.scratch_bytes:
                scratch.append((obj, k, f"{k.scratch_bytes} B/lane"))
            if k.dynamic_stack:
                dynamic.append((obj, k, "dynamic stack"))
    if over_lds:
        report.add(CHECK_CODE_OBJECT, "error", label,
                   f"{_count(over_lds)} need more LDS than their arch has per workgroup: launches fail",
                   evidence=_kernel_list(over_lds),
                   hint="reduce the tile sizes / shared memory of those kernels for this arch")
    if spilling:
        report.add(CHECK_CODE_OBJECT, "warning", label,
                   f"{_count(spilling)} spill registers to scratch memory (slow)", evidence=_kernel_list(spilling),
                   hint="lower register pressure (smaller tiles, fewer stages) or relax waves_per_eu")
    if scratch:
        report.add(CHECK_CODE_OBJECT, "warning", label, f"{_count(scratch)} use scratch (private) memory",
                   evidence=_kernel_list(scratch),
                   hint="stack arrays or dynamic indexing put data in slow scratch memory")
    if dynamic:
        report.add(CHECK_CODE_OBJECT, "warning", label,
                   f"{_count(dynamic)} use a dynamic stack (recursion or indirect calls)",
                   evidence=_kernel_list(dynamic), hint="avoid recursion and function pointers in device code")


def _count(rows) -> str:
    targets = sorted({obj.target_id or "?" for obj, _k, _d in rows})
    return f"{len(rows)} kernels in {len(targets)} targets ({', '.join(targets)})"


def _kernel_list(rows) -> str:
    names = demangle.demangle_many(k.name for _obj, k, _what in rows[:_SHOWN])
    shown = [f"{obj.target_id}: {names[k.name]} ({what})" for obj, k, what in rows[:_SHOWN]]
    more = f" (+{len(rows) - _SHOWN} more)" if len(rows) > _SHOWN else ""
    return ", ".join(shown) + more
