"""AMDGPU code objects: target from the ELF header, kernels from the metadata note.

Facts (LLVM AMDGPUUsage, "ELF Header" and "Code Object Metadata"):
``e_machine`` 224, ``EI_ABIVERSION`` 0..4 = code object v2..v6, ``e_flags & 0xff`` =
EF_AMDGPU_MACH, feature bits v4+: xnack 0x300 (0x100 any, 0x200 off, 0x300 on),
sramecc 0xc00 (0x400 any, 0x800 off, 0xc00 on); v3: 0x100 xnack on, 0x200 sramecc on.
Metadata: note "AMDGPU" type 32 (NT_AMDGPU_METADATA), msgpack map with ``amdhsa.kernels``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import msgpack

from rocstack.arches import TargetID, all_arches, mach_table, supported_features
from rocstack.audit.elf import EM_AMDGPU, ElfError, ElfFile
from rocstack.audit.segments import segment_notes

NT_AMDGPU_METADATA = 32
_ABI_TO_CODE_OBJECT_VERSION = {0: 2, 1: 3, 2: 4, 3: 5, 4: 6}
_FEATURE_V4 = {"xnack": (0x300, 8), "sramecc": (0xC00, 10)}
_FEATURE_V4_STATE = {0: None, 1: "any", 2: "-", 3: "+"}
# msgpack limits: metadata of one code object is kilobytes; anything huge is hostile.
_MAX_METADATA_BYTES = 64 << 20


@dataclass(slots=True)  # rocBLAS carries ~100k kernels: keep each record small
class Kernel:
    name: str
    vgprs: int | None
    agprs: int | None
    sgprs: int | None
    vgpr_spills: int
    sgpr_spills: int
    lds_bytes: int
    scratch_bytes: int
    wavefront_size: int | None
    max_flat_workgroup_size: int | None
    dynamic_stack: bool
    occupancy: int | None  # waves per SIMD from the register budget, None for an unknown arch


@dataclass
class CodeObject:
    where: str  # "file" or "bundle 3 entry hipv4-amdgcn-amd-amdhsa--gfx942"
    processor: str | None
    target_id: str | None
    mach: int
    code_object_version: int | None
    size: int
    kernels: list[Kernel] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    generic_version: int | None = None  # EF_AMDGPU_GENERIC_VERSION of a generic code object (v6+)

    def target(self) -> TargetID | None:
        if not self.target_id:
            return None
        processor, *parts = self.target_id.split(":")
        return TargetID(processor, tuple(sorted((p[:-1], p[-1]) for p in parts)))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["mach"] = f"{self.mach:#04x}"
        return data


def _features(elf: ElfFile, version: int | None, processor: str | None) -> list[tuple[str, str]]:
    known = supported_features(processor or "")
    supported = set(known) if known is not None else {"xnack", "sramecc"}
    out = []
    if version == 3:
        for name, bit in (("xnack", 0x100), ("sramecc", 0x200)):
            if name in supported and elf.flags & bit:
                out.append((name, "+"))
    elif version is not None and version >= 4:
        for name, (mask, shift) in _FEATURE_V4.items():
            state = _FEATURE_V4_STATE[(elf.flags & mask) >> shift]
            if state in ("+", "-"):
                out.append((name, state))
    return sorted(out)


def parse_code_object(buf, base: int = 0, length: int | None = None, where: str = "file",
                      label: str = "code object", full_size: int | None = None) -> CodeObject:
    """Decode one AMDGPU code object; structural damage raises ElfError, metadata damage is a problem.

    ``full_size``: ``buf`` holds only the first bytes of a code object that large (see
    :func:`rocstack.audit.fatbin.code_object_prefix`): the metadata comes from its PT_NOTE segment.
    """
    elf = ElfFile(buf, base, length, label)
    if elf.machine != EM_AMDGPU:
        raise ElfError(f"{label}: e_machine {elf.machine} is not AMDGPU (224)")
    version = _ABI_TO_CODE_OBJECT_VERSION.get(elf.abiversion)
    mach = elf.flags & 0xFF
    name, kind = mach_table().get(mach, (None, None))
    processor = name if kind in ("processor", "generic", "retired") else None
    obj = CodeObject(where, processor, None, mach, version, full_size or elf.length)
    if elf.osabi != 64:
        obj.problems.append(f"EI_OSABI is {elf.osabi}, not AMDGPU_HSA (64): not loadable by the HIP runtime")
    if version is None:
        obj.problems.append(f"unknown EI_ABIVERSION {elf.abiversion} (code object version not known)")
    if kind == "r600":
        obj.problems.append(f"EF_AMDGPU_MACH {mach:#04x} is {name}, a pre-GCN (R600) GPU the HIP runtime never loads")
    elif processor is None:
        obj.problems.append(f"EF_AMDGPU_MACH {mach:#04x} is not in LLVM's table (reserved or newer than rocstack)")
    else:
        if kind == "generic":
            obj.generic_version = elf.flags >> 24 or None
            if version is not None and version < 6:
                obj.problems.append(f"generic target {processor} in a code object v{version}: generic code objects "
                                    "need v6, loaders reject it")
        elif kind == "retired":
            obj.problems.append(f"{processor} is retired: LLVM removed it and current runtimes never pick it")
        feats = _features(elf, version, processor)
        obj.target_id = processor + "".join(f":{n}{s}" for n, s in feats)
    obj.kernels = _kernels(elf, obj, processor, prefix_only=full_size is not None)
    return obj


def _kernels(elf: ElfFile, obj: CodeObject, processor: str | None, prefix_only: bool = False) -> list[Kernel]:
    metadata = None
    for name, ntype, desc in (segment_notes(elf) if prefix_only else elf.notes()):
        if name == "AMDGPU" and ntype == NT_AMDGPU_METADATA:
            metadata = desc
            break
    if metadata is None:
        if obj.code_object_version and obj.code_object_version >= 3:
            obj.problems.append("no AMDGPU metadata note (NT_AMDGPU_METADATA): kernels cannot be listed")
        return []
    decoded = decode_metadata(metadata)
    if isinstance(decoded, str):
        obj.problems.append(decoded)
        return []
    entries = decoded.get("amdhsa.kernels", [])
    if not isinstance(entries, list):
        obj.problems.append(f"metadata amdhsa.kernels is a {type(entries).__name__}, not a list: kernels cannot be listed")
        return []
    arch = all_arches().get(processor or "")
    kernels = []
    for entry in entries:
        if not isinstance(entry, dict):
            obj.problems.append("metadata kernel entry is not a map")
            continue
        kernels.append(_kernel(entry, arch))
    return kernels


def decode_metadata(data: bytes) -> dict | str:
    """The msgpack metadata map, or a one-line problem when it cannot be decoded."""
    if len(data) > _MAX_METADATA_BYTES:
        return f"metadata note is {len(data)} bytes, over the {_MAX_METADATA_BYTES} limit"
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types on corrupt input (ValueError, ExtraData, StackError...)
        return f"metadata note is not valid msgpack ({type(exc).__name__})"
    if not isinstance(value, dict):
        return "metadata note is not a msgpack map"
    return value


def _int(entry: dict, key: str) -> int | None:
    value = entry.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _kernel(entry: dict, arch) -> Kernel:
    vgprs, agprs = _int(entry, ".vgpr_count"), _int(entry, ".agpr_count")
    wave = _int(entry, ".wavefront_size")
    occupancy = None
    if arch is not None and vgprs is not None:
        # gfx90a+ report .vgpr_count as the unified total (arch + acc VGPRs,
        # AMDGPUAsmPrinter NumVGPRsForWavesPerEU); only gfx908 has a separate AGPR file.
        regs = vgprs
        if wave and wave > arch.wavefront_size:  # wave64 on a wave32 arch takes both halves
            regs *= wave // arch.wavefront_size
        occupancy = arch.occupancy(regs, (agprs or 0) if arch.agprs_per_simd_lane else 0)
    name = entry.get(".name")
    return Kernel(
        name=name if isinstance(name, str) else "?",
        vgprs=vgprs,
        agprs=agprs,
        sgprs=_int(entry, ".sgpr_count"),
        vgpr_spills=_int(entry, ".vgpr_spill_count") or 0,
        sgpr_spills=_int(entry, ".sgpr_spill_count") or 0,
        lds_bytes=_int(entry, ".group_segment_fixed_size") or 0,
        scratch_bytes=_int(entry, ".private_segment_fixed_size") or 0,
        wavefront_size=wave,
        max_flat_workgroup_size=_int(entry, ".max_flat_workgroup_size"),
        dynamic_stack=bool(entry.get(".uses_dynamic_stack")),
        occupancy=occupancy,
    )
