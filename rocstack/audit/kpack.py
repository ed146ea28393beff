"""kpack-split host libraries: detection, their ``.rocm_kpack_ref``, HIPK wrappers, ELF integrity.

TheRock (AMD's ROCm 7 build) splits device code out of host libraries with rocm-kpack
(github.com/ROCm/rocm-kpack, ``elf/kpack_transform.py``). A split library has:

- ``.rocm_kpack_ref``: msgpack ``{"kernel_name": str, "kpack_search_paths": [str]}``,
  mapped by its own PT_LOAD;
- ``.hipFatBinSegment``: one 24-byte wrapper per registered fat binary, magic ``HIPK``
  (0x4B504948) instead of ``HIPF`` (0x48495046), the pointer (+8) relocated to
  ``.rocm_kpack_ref`` and the wrapper's index ``co_index`` in the reserved field (+16, u32);
- ``.hip_fatbin`` zero-paged and turned SHT_NOBITS.

The HIP runtime hands each HIPK wrapper to the kpack loader, which looks up the key
``<kernel_name>#<co_index>`` in the archives named by the search paths. Such a library is
neither corrupt nor CPU-only; what can be wrong with it is judged here (structure) and in
:mod:`rocstack.audit.kpack_coverage` (whether the archives hold its code).

Integrity of post-processed files: every program header inside the file and the address
space, PT_PHDR/PT_DYNAMIC mapped where they lie (a stock patchelf rewrites split libraries
into a PT_PHDR no PT_LOAD maps, or a vaddr like 0xfffffffffff79040), and no dynamic
relocation still pointing into the zeroed ``.hip_fatbin``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal

import msgpack

from rocstack.audit.elf import SHT_NOBITS, ElfError, ElfFile
from rocstack.audit.magic import FATBIN_SECTION
from rocstack.audit.segments import PT_DYNAMIC, PT_LOAD, PT_PHDR, Relocation, Segment, dynamic_relocations, \
    loads, program_headers

REF_SECTION = ".rocm_kpack_ref"
WRAPPER_SECTION = ".hipFatBinSegment"
HIPF_MAGIC = 0x48495046
HIPK_MAGIC = 0x4B504948
_WRAPPER = struct.Struct("<IIQII")  # magic, version, pointer, reserved (co_index u32 + u32 zero)
# The loader parses the metadata with at most 64 KiB (rocm-kpack runtime/src/loader.cpp).
MAX_REF_BYTES = 64 * 1024
# x86-64 user space ends at 2**47 (2**56 with 5-level paging); a vaddr above it cannot map.
_MAX_USER_VADDR = 1 << 56

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class KpackFinding:
    """One problem, in the shape the coverage model turns into a report finding."""

    severity: Severity
    kind: str  # stable id: kpack-ref, kpack-wrapper, elf-integrity, kpack-archive, kpack-coverage, ...
    where: str  # the library or archive (path inside the root, or the audited label)
    message: str
    hint: str = ""
    evidence: str = ""


@dataclass(frozen=True)
class KpackRef:
    kernel_name: str
    search_paths: tuple[str, ...]


@dataclass(frozen=True)
class Wrapper:
    index: int
    magic: int
    version: int
    co_index: int  # reserved field, low 32 bits (meaningful for HIPK)
    pointer: int | None  # where the wrapper's pointer will point after relocation (None: unknown)

    @property
    def is_kpack(self) -> bool:
        return self.magic == HIPK_MAGIC

    @property
    def kind(self) -> str:
        return {HIPF_MAGIC: "HIPF", HIPK_MAGIC: "HIPK"}.get(self.magic, f"{self.magic:#010x}")


@dataclass
class SplitLibrary:
    """A host library whose device code lives in kpack archives."""

    label: str
    ref: KpackRef | None
    wrappers: list[Wrapper]
    fatbin_nobits: bool
    # -fgpu-rdc: the device link made one fat binary (an exported ``__hip_fatbin``) that every
    # translation unit's wrapper points to, and the TUs share one comdat ``__hip_gpubin_handle``,
    # so only the first wrapper is ever registered.
    shared_registration: bool = False
    findings: list[KpackFinding] = field(default_factory=list)

    @property
    def co_indexes(self) -> list[int]:
        """co_index of every wrapper the HIP runtime registers (each one is a loader request)."""
        kpack = [w for w in self.wrappers if w.is_kpack]
        if self.shared_registration and kpack:
            return [kpack[0].co_index]
        return sorted({w.co_index for w in kpack})

    def keys(self) -> list[str]:
        """The archive keys the loader asks for: ``<kernel_name>#<co_index>``."""
        if self.ref is None:
            return []
        return [f"{self.ref.kernel_name}#{i}" for i in self.co_indexes]


def is_split(elf: ElfFile) -> bool:
    """Any of the three marks of a kpack split (a NOBITS fat binary alone counts: it holds no code)."""
    if elf.section(REF_SECTION) is not None:
        return True
    fatbin = elf.section(FATBIN_SECTION)
    if fatbin is not None and fatbin.type == SHT_NOBITS:
        return True
    return any(w.is_kpack for w in read_wrappers(elf))


def read_split_library(elf: ElfFile, label: str, relocations: list[Relocation] | None = None) -> SplitLibrary | None:
    """The ref, wrappers and structural findings of a split library; None when ``elf`` is not split.

    ``relocations``: the library's dynamic relocations when the caller has read them already.
    Raises ElfError only when a section the split relies on lies outside the file (the
    caller reports it like any unreadable object)."""
    if not is_split(elf):
        return None
    findings: list[KpackFinding] = []
    try:
        if relocations is None:
            relocations = dynamic_relocations(elf)
        segments = program_headers(elf)
    except ElfError as exc:
        relocations, segments = [], []
        findings.append(KpackFinding("error", "elf-integrity", label, f"cannot read relocations or segments: {exc}",
                                     "the library is damaged: reinstall it"))
    wrappers = read_wrappers(elf, relocations)
    fatbin = elf.section(FATBIN_SECTION)
    lib = SplitLibrary(label, _read_ref(elf, label, segments, findings), wrappers,
                       fatbin is not None and fatbin.type == SHT_NOBITS, _exports_fatbin(elf), findings)
    _check_wrappers(elf, lib)
    return lib


def _read_ref(elf: ElfFile, label: str, segments: list[Segment], findings: list[KpackFinding]) -> KpackRef | None:
    sec = elf.section(REF_SECTION)
    hint = "re-run the kpack split (rocm-kpack split_artifacts) on the original library"
    if sec is None:
        return None
    if sec.type == SHT_NOBITS or sec.size == 0:
        findings.append(KpackFinding("error", "kpack-ref", label, f"{REF_SECTION} holds no bytes", hint))
        return None
    if segments and not any(s.maps_vaddr(_section_addr(elf, sec)) for s in loads(segments)):
        findings.append(KpackFinding(
            "error", "kpack-ref", label,
            f"{REF_SECTION} is not mapped by any PT_LOAD: the HIP runtime reads unmapped memory for it", hint))
    raw = elf.section_bytes(sec)
    if len(raw) > MAX_REF_BYTES:
        findings.append(KpackFinding(
            "error", "kpack-ref", label,
            f"{REF_SECTION} is {len(raw)} bytes; the kpack loader parses at most {MAX_REF_BYTES}", hint))
        return None
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises ExtraData, FormatError, StackError, ValueError, ...
        findings.append(KpackFinding("error", "kpack-ref", label,
                                     f"{REF_SECTION} is not valid msgpack ({type(exc).__name__})", hint))
        return None
    name = value.get("kernel_name") if isinstance(value, dict) else None
    paths = value.get("kpack_search_paths") if isinstance(value, dict) else None
    if not isinstance(name, str) or not isinstance(paths, list):
        findings.append(KpackFinding(
            "error", "kpack-ref", label,
            f"{REF_SECTION} lacks kernel_name (str) or kpack_search_paths (list): the loader refuses it "
            "(KPACK_ERROR_INVALID_METADATA)", hint, evidence=repr(value)[:200]))
        return None
    strings = tuple(p for p in paths if isinstance(p, str))
    if len(strings) != len(paths):
        findings.append(KpackFinding("warning", "kpack-ref", label,
                                     f"{len(paths) - len(strings)} of {len(paths)} search paths are not strings "
                                     "(the loader skips them)", hint))
    if not strings:
        findings.append(KpackFinding("error", "kpack-ref", label,
                                     f"{REF_SECTION} names no search path: the loader refuses it", hint))
        return None
    return KpackRef(name, strings)


def _exports_fatbin(elf: ElfFile) -> bool:
    """Does the library define the -fgpu-rdc device-link symbol ``__hip_fatbin``?"""
    if not elf.has_dynsym() or not elf.dynstr_contains(b"\0__hip_fatbin\0"):
        return False
    return any(sym.name == "__hip_fatbin" for sym in elf.symbols(undefined=False))


def _section_addr(elf: ElfFile, sec) -> int:
    # Section.addr is not kept by the reader; read sh_addr from the header table.
    index = next(i for i, s in enumerate(elf.sections) if s is sec)
    (addr,) = struct.unpack("<Q", elf.read(elf.shoff + index * 64 + 16, 8, "section address"))
    return addr


def read_wrappers(elf: ElfFile, relocations: list[Relocation] = ()) -> list[Wrapper]:
    """The 24-byte wrappers of ``.hipFatBinSegment``: one per fat binary the HIP runtime registers.

    The pointer is filled by a dynamic relocation at load time: with ``relocations`` it is
    where that relocation points, else the word stored in the file (None when zero)."""
    sec = elf.section(WRAPPER_SECTION)
    if sec is None or sec.type == SHT_NOBITS:
        return []
    data = elf.section_bytes(sec)
    base = _section_addr(elf, sec)
    by_offset = {r.offset: r for r in relocations}
    out = []
    for index in range(len(data) // _WRAPPER.size):
        magic, version, pointer, co_index, _high = _WRAPPER.unpack_from(data, index * _WRAPPER.size)
        reloc = by_offset.get(base + index * _WRAPPER.size + 8)
        target = reloc.target if reloc is not None else (pointer or None)
        out.append(Wrapper(index, magic, version, co_index, target))
    return out


def _check_wrappers(elf: ElfFile, lib: SplitLibrary) -> None:
    label, add = lib.label, lib.findings.append
    hint = "re-run the kpack split on the original library (rocm-kpack split_artifacts)"
    sec = elf.section(WRAPPER_SECTION)
    if sec is not None and sec.size % _WRAPPER.size:
        add(KpackFinding("error", "kpack-wrapper", label,
                         f"{WRAPPER_SECTION} is {sec.size} bytes, not a whole number of 24-byte wrappers", hint))
    kpack = [w for w in lib.wrappers if w.is_kpack]
    other = [w for w in lib.wrappers if w.magic not in (HIPK_MAGIC, HIPF_MAGIC)]
    plain = [w for w in lib.wrappers if w.magic == HIPF_MAGIC]
    if other:
        add(KpackFinding("error", "kpack-wrapper", label,
                         f"{len(other)} fat-binary wrappers carry neither HIPF nor HIPK magic "
                         f"(first: {other[0].magic:#010x}): the HIP runtime rejects them", hint))
    if not kpack:
        if lib.fatbin_nobits and plain:
            add(KpackFinding("error", "kpack-wrapper", label,
                             f"{FATBIN_SECTION} is zeroed (NOBITS) but its {len(plain)} wrappers still say HIPF: "
                             "the HIP runtime reads zeros as a fat binary (hipErrorInvalidKernelFile)", hint))
        elif lib.ref is not None:
            add(KpackFinding("info", "kpack-wrapper", label,
                             f"has {REF_SECTION} but no HIPK wrapper: its device code is still embedded",
                             "nothing to do; the embedded fat binary is used"))
        return
    if plain:
        add(KpackFinding("error", "kpack-wrapper", label,
                         f"mixes {len(kpack)} HIPK and {len(plain)} HIPF wrappers: the HIPF ones point into the "
                         f"zeroed {FATBIN_SECTION}", hint))
    if lib.ref is None and not any(f.kind == "kpack-ref" for f in lib.findings):
        add(KpackFinding("error", "kpack-ref", label,
                         f"{len(kpack)} HIPK wrappers but no {REF_SECTION} section: the kpack loader has no "
                         "kernel name or search path (KPACK_ERROR_INVALID_METADATA)", hint))
    ref = elf.section(REF_SECTION)
    if ref is not None:
        ref_addr = _section_addr(elf, ref)
        astray = [w for w in kpack if w.pointer is not None and w.pointer != ref_addr]
        if astray:
            add(KpackFinding("error", "kpack-wrapper", label,
                             f"{len(astray)} HIPK wrappers point to {astray[0].pointer:#x}, not to {REF_SECTION} "
                             f"at {ref_addr:#x}: the loader parses the wrong bytes as kpack metadata", hint))
    indexes = [w.co_index for w in kpack]
    if len(set(indexes)) != len(indexes):
        add(KpackFinding("warning", "kpack-wrapper", label,
                         f"HIPK wrappers repeat co_index values ({sorted(indexes)}): two registrations ask for "
                         "the same code object", hint))


def check_integrity(elf: ElfFile, label: str, relocations: list[Relocation] | None = None) -> list[KpackFinding]:
    """Program headers in bounds and mapped where they lie; no relocation into a zeroed ``.hip_fatbin``.

    ``relocations``: the dynamic relocations when the caller has read them already."""
    out: list[KpackFinding] = []
    hint_patchelf = ("a stock patchelf (before 0.18) corrupts kpack-split libraries: take the file from its "
                     "package again and set RPATH with the split tool or a patchelf that handles added PT_LOADs")
    try:
        segments = program_headers(elf)
    except ElfError as exc:
        return [KpackFinding("error", "elf-integrity", label, f"program headers unreadable: {exc}", hint_patchelf)]
    for seg in segments:
        if seg.type == PT_LOAD and seg.offset + seg.filesz > elf.length:
            out.append(KpackFinding("error", "elf-integrity", label,
                                    f"PT_LOAD #{seg.index} maps file bytes {seg.offset:#x}+{seg.filesz:#x}, past the "
                                    f"end of the {elf.length}-byte file", hint_patchelf))
        if seg.vaddr + seg.memsz >= _MAX_USER_VADDR:
            out.append(KpackFinding("error", "elf-integrity", label,
                                    f"PT_{seg.name} #{seg.index} has vaddr {seg.vaddr:#x} (+{seg.memsz:#x}), outside "
                                    "any user address space: the loader refuses or misreads the file",
                                    hint_patchelf))
        if seg.type == PT_LOAD and seg.filesz > seg.memsz:
            out.append(KpackFinding("error", "elf-integrity", label,
                                    f"PT_LOAD #{seg.index} has filesz {seg.filesz:#x} > memsz {seg.memsz:#x}",
                                    hint_patchelf))
    load_segments = loads(segments)
    vaddrs = [s.vaddr for s in load_segments]
    if vaddrs != sorted(vaddrs):
        out.append(KpackFinding("warning", "elf-integrity", label,
                                "PT_LOAD entries are not sorted by vaddr (the gABI requires it)", hint_patchelf))
    for kind in (PT_PHDR, PT_DYNAMIC):
        for seg in (s for s in segments if s.type == kind):
            if not any(s.file_offset(seg.vaddr) == seg.offset for s in load_segments):
                out.append(KpackFinding(
                    "error", "elf-integrity", label,
                    f"PT_{seg.name} says vaddr {seg.vaddr:#x} holds file offset {seg.offset:#x}, but no PT_LOAD maps "
                    "it there: the dynamic loader reads the wrong memory for it (dl_iterate_phdr, C++ exception "
                    "unwinding, profilers)", hint_patchelf,
                    evidence=", ".join(f"LOAD {s.offset:#x}->{s.vaddr:#x}+{s.filesz:#x}" for s in load_segments)))
    out += _relocations_into_fatbin(elf, label, relocations)
    return out


def _relocations_into_fatbin(elf: ElfFile, label: str, relocations: list[Relocation] | None) -> list[KpackFinding]:
    fatbin = elf.section(FATBIN_SECTION)
    if fatbin is None or fatbin.type != SHT_NOBITS:
        return []
    start = _section_addr(elf, fatbin)
    end = start + fatbin.size
    try:
        if relocations is None:
            relocations = dynamic_relocations(elf)
    except ElfError as exc:
        return [KpackFinding("error", "elf-integrity", label, f"relocations unreadable: {exc}",
                             "reinstall the library")]
    bad = [r for r in relocations if r.target is not None and start <= r.target < end]
    if not bad:
        return []
    shown = ", ".join(f"{r.section} @{r.offset:#x} -> {r.target:#x}" for r in bad[:5])
    return [KpackFinding(
        "error", "elf-integrity", label,
        f"{len(bad)} dynamic relocations point into the zeroed {FATBIN_SECTION} ({start:#x}-{end:#x}): code "
        "reaching them reads zeros instead of a fat binary",
        "the split left a reference to the embedded fat binary (e.g. a -fgpu-rdc __hip_fatbin symbol): "
        "re-split with a rocm-kpack that redirects every wrapper, or ship the library unsplit",
        evidence=shown)]
