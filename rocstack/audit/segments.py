"""Program headers and dynamic relocations of an ELF64 object, read through :class:`ElfFile`.

Layouts (System V gABI and the x86-64 psABI): Elf64_Phdr
``{u32 type, u32 flags, u64 offset, u64 vaddr, u64 paddr, u64 filesz, u64 memsz, u64 align}``;
Elf64_Rela ``{u64 r_offset, u64 r_info (sym << 32 | type), i64 r_addend}``; SHT_RELR
(``.relr.dyn``, DT_RELR) packs R_*_RELATIVE offsets as an address word followed by
bitmap words, the addend being the word already stored at each offset.

The one reader of program headers: where each segment maps, the notes a loader sees
(code objects whose section headers lie past a bounded prefix), and where each dynamic
relocation points (the integrity checks of post-processed, kpack-split or patchelf'd, libraries).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rocstack.audit.elf import ElfError, ElfFile, Section, parse_notes

PT_LOAD, PT_DYNAMIC, PT_NOTE, PT_PHDR = 1, 2, 4, 6
PT_NAMES = {0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 6: "PHDR", 7: "TLS",
            0x6474E550: "GNU_EH_FRAME", 0x6474E551: "GNU_STACK", 0x6474E552: "GNU_RELRO",
            0x6474E553: "GNU_PROPERTY"}
SHT_RELA, SHT_RELR = 4, 19
R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_RELATIVE = 1, 6, 7, 8

_PHDR = struct.Struct("<IIQQQQQQ")
_RELA = struct.Struct("<QQq")
_WORD = struct.Struct("<Q")
_SYM = struct.Struct("<IBBHQQ")
_MAX_PHDRS = 1 << 16
_MAX_RELOCATIONS = 1 << 26  # 64M entries: a real .rela.dyn of a 1 GiB library holds ~1M


@dataclass(frozen=True)
class Segment:
    index: int
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int

    @property
    def name(self) -> str:
        return PT_NAMES.get(self.type, f"{self.type:#x}")

    def maps_vaddr(self, vaddr: int) -> bool:
        return self.vaddr <= vaddr < self.vaddr + self.memsz

    def file_offset(self, vaddr: int) -> int | None:
        """File offset holding ``vaddr`` when this segment maps it from the file (not its zero tail)."""
        if self.vaddr <= vaddr < self.vaddr + self.filesz:
            return self.offset + (vaddr - self.vaddr)
        return None


@dataclass(frozen=True)
class Relocation:
    section: str  # .rela.dyn, .rela.plt, .relr.dyn
    offset: int  # r_offset: the address that gets written
    type: int
    symbol: int  # dynamic symbol index (0: none)
    addend: int
    target: int | None  # the address the relocated word will hold, when it is knowable statically


def program_headers(elf: ElfFile) -> list[Segment]:
    """Every program header; a table outside the file raises ElfError."""
    if elf.phnum == 0:
        return []
    if elf.phentsize != _PHDR.size:
        raise ElfError(f"{elf.label}: program header size {elf.phentsize}, expected {_PHDR.size}")
    if elf.phnum > _MAX_PHDRS:
        raise ElfError(f"{elf.label}: claims {elf.phnum} program headers: not plausible")
    raw = elf.read(elf.phoff, elf.phnum * _PHDR.size, "program header table")
    out = []
    for index, (typ, flags, offset, vaddr, _paddr, filesz, memsz, align) in enumerate(_PHDR.iter_unpack(raw)):
        out.append(Segment(index, typ, flags, offset, vaddr, filesz, memsz, align))
    return out


def segment_notes(elf: ElfFile):
    """(name, type, desc bytes) of every PT_NOTE segment: what a loader sees, without section headers."""
    for seg in program_headers(elf):
        if seg.type == PT_NOTE:
            yield from parse_notes(elf.read(seg.offset, seg.filesz, "PT_NOTE segment"), 8 if seg.align == 8 else 4,
                                   elf.label)


def loads(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if s.type == PT_LOAD]


def vaddr_to_offset(segments: list[Segment], vaddr: int) -> int | None:
    for seg in loads(segments):
        offset = seg.file_offset(vaddr)
        if offset is not None:
            return offset
    return None


def _symbol_values(elf: ElfFile, section: Section) -> list[tuple[int, int]] | None:
    """(value, shndx) of each symbol of the relocation section's symbol table."""
    if section.link == 0 or section.link >= len(elf.sections):
        return None
    symtab = elf.sections[section.link]
    count = symtab.size // _SYM.size
    raw = elf.read(symtab.offset, count * _SYM.size, symtab.name or "symbol table")
    return [(value, shndx) for _n, _i, _o, shndx, value, _s in _SYM.iter_unpack(raw)]


def dynamic_relocations(elf: ElfFile) -> list[Relocation]:
    """RELA and RELR relocations of every SHT_RELA/SHT_RELR section, with their static targets.

    Target: R_X86_64_RELATIVE -> addend; R_X86_64_64 / GLOB_DAT / JUMP_SLOT against a symbol
    the object defines -> symbol value + addend (the load base cancels out); RELR -> the word
    stored at the offset. None when the target lives in another object.
    """
    segments = program_headers(elf)
    out: list[Relocation] = []
    for sec in elf.sections:
        if sec.type == SHT_RELA:
            if sec.entsize not in (0, _RELA.size):
                raise ElfError(f"{elf.label}: {sec.name} entry size {sec.entsize}, expected {_RELA.size}")
            count = sec.size // _RELA.size
            if count > _MAX_RELOCATIONS:
                raise ElfError(f"{elf.label}: {sec.name} claims {count} relocations: not plausible")
            values = _symbol_values(elf, sec)
            raw = elf.read(sec.offset, count * _RELA.size, sec.name)
            for r_offset, info, addend in _RELA.iter_unpack(raw):
                typ, sym = info & 0xFFFFFFFF, info >> 32
                target = None
                if typ == R_X86_64_RELATIVE:
                    target = addend & 0xFFFFFFFFFFFFFFFF
                elif typ in (R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT) and values and sym < len(values):
                    value, shndx = values[sym]
                    if shndx != 0:
                        target = (value + addend) & 0xFFFFFFFFFFFFFFFF
                out.append(Relocation(sec.name, r_offset, typ, sym, addend, target))
        elif sec.type == SHT_RELR:
            out.extend(_relr(elf, sec, segments))
    return out


def _relr(elf: ElfFile, sec: Section, segments: list[Segment]) -> list[Relocation]:
    raw = elf.read(sec.offset, sec.size // 8 * 8, sec.name)
    out: list[Relocation] = []
    base = None
    for (word,) in _WORD.iter_unpack(raw):
        if word & 1 == 0:  # an address: relocate it, bitmaps that follow cover the next 63 words
            offsets = [word]
            base = word + 8
        else:
            if base is None:
                raise ElfError(f"{elf.label}: {sec.name} starts with a bitmap entry")
            offsets = [base + 8 * bit for bit in range(63) if word >> (bit + 1) & 1]
            base += 63 * 8
        for address in offsets:
            if len(out) >= _MAX_RELOCATIONS:
                raise ElfError(f"{elf.label}: {sec.name} expands to too many relocations")
            file_offset = vaddr_to_offset(segments, address)
            target = None
            if file_offset is not None and file_offset + 8 <= elf.length:
                (target,) = _WORD.unpack(elf.read(file_offset, 8, sec.name + " target word"))
            out.append(Relocation(sec.name, address, R_X86_64_RELATIVE, 0, 0, target))
    return out
