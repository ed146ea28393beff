"""Minimal, bounds-checked ELF64 little-endian reader over a buffer (mmap or bytes).

Why not pyelftools for everything: iterating 100k dynamic symbols through it
takes seconds; here the symbol, version and dynamic tables are decoded with
``struct`` straight from the mapped file, touching only the pages they live on.
Every offset and count read from the file is checked against the buffer, so a
truncated or lying file raises :class:`ElfError` instead of reading garbage,
looping forever or allocating without bound.

Layouts: System V gABI (ELF header, section header, Elf64_Sym, Elf64_Dyn) and
the LSB "Symbol Versioning" chapter (Elf64_Verneed/Vernaux/Verdef/Verdaux).
"""

from __future__ import annotations

import mmap
import os
import struct
from array import array
from dataclasses import dataclass
from functools import cached_property

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 62
EM_AMDGPU = 224
ET_EXEC, ET_DYN = 2, 3
SHT_NOBITS = 8
SHN_UNDEF = 0
STB_LOCAL, STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 0, 1, 2, 10
DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
VER_FLG_WEAK = 0x2
_EXPORTED_BINDS = frozenset((STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE))
VERSYM_HIDDEN = 0x8000

_EHDR = struct.Struct("<HHIQQQIHHHHHH")  # after the 16-byte e_ident
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_DYN = struct.Struct("<qQ")
_VERNEED = struct.Struct("<HHIII")
_VERNAUX = struct.Struct("<IHHII")
_VERDEF = struct.Struct("<HHHHIII")
_VERDAUX = struct.Struct("<II")
_NOTE = struct.Struct("<III")

# A real table never has more entries than this; a larger count is a lie.
_MAX_VERSION_ENTRIES = 1 << 16
_MAX_SECTIONS = 1 << 20


class ElfError(Exception):
    """The bytes are not a well-formed ELF64 little-endian object (message says where)."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int


@dataclass(frozen=True)
class Symbol:
    index: int
    name: str
    bind: int
    shndx: int
    visibility: int
    version: str | None  # version name (needed or defined), None when unversioned
    hidden: bool  # versym bit 15: not the default version

    @property
    def is_undefined(self) -> bool:
        return self.shndx == SHN_UNDEF

    @property
    def is_exported(self) -> bool:
        return (
            self.shndx != SHN_UNDEF
            and self.bind in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE)
            and self.visibility in (0, 3)  # STV_DEFAULT, STV_PROTECTED
        )


@dataclass(frozen=True)
class VersionNeed:
    file: str  # the soname that must define these versions
    versions: tuple[tuple[str, bool], ...]  # (version name, weak)


class ElfFile:
    """One ELF object inside ``buf[base:base + length]``."""

    def __init__(self, buf, base: int = 0, length: int | None = None, label: str = "ELF object"):
        self.buf = buf
        self.base = base
        self.length = (len(buf) - base) if length is None else length
        self.label = label
        ident = self.read(0, 16, "ELF identification")
        if ident[:4] != ELF_MAGIC:
            raise ElfError(f"{label}: not an ELF file (magic {ident[:4]!r})")
        if ident[4] != 2:
            raise ElfError(f"{label}: 32-bit ELF (class {ident[4]}) is not supported")
        if ident[5] != 1:
            raise ElfError(f"{label}: big-endian ELF is not supported")
        self.osabi = ident[7]  # read ourselves: pyelftools mislabels AMDGPU_HSA (64)
        self.abiversion = ident[8]
        (self.type, self.machine, _version, _entry, self.phoff, self.shoff, self.flags,
         _ehsize, self.phentsize, self.phnum, self.shentsize, self.shnum, self.shstrndx,
         ) = _EHDR.unpack(self.read(16, _EHDR.size, "ELF header"))

    # -- raw access -------------------------------------------------------
    def read(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.length:
            raise ElfError(
                f"{self.label}: {what} at offset {offset:#x} (+{size}) lies past the end "
                f"of the {self.length}-byte file (truncated or corrupt)"
            )
        start = self.base + offset
        return self.buf[start:start + size]

    def cstring(self, table: Section, offset: int) -> str:
        """NUL-terminated string at ``offset`` in a string table, bounded by the table."""
        if offset >= table.size:
            raise ElfError(f"{self.label}: string offset {offset} outside {table.name} ({table.size} bytes)")
        start = self.base + table.offset + offset
        end = self.buf.find(b"\0", start, self.base + table.offset + table.size)
        if end < 0:
            raise ElfError(f"{self.label}: unterminated string in {table.name}")
        return self.buf[start:end].decode("utf-8", "surrogateescape")

    def section_bytes(self, section: Section) -> bytes:
        return self.read(section.offset, section.size, f"section {section.name}")

    # -- tables -------------------------------------------------------------
    @cached_property
    def sections(self) -> list[Section]:
        if self.shoff == 0:
            return []
        if self.shentsize != _SHDR.size:
            raise ElfError(f"{self.label}: section header size {self.shentsize}, expected {_SHDR.size}")
        count, names_index = self.shnum, self.shstrndx
        if count == 0 or names_index == 0xFFFF:  # gABI extended numbering: the real values live in section 0
            first = _SHDR.unpack(self.read(self.shoff, _SHDR.size, "section header 0"))
            count = count or first[5]
            names_index = first[6] if names_index == 0xFFFF else names_index
            if count > _MAX_SECTIONS:
                raise ElfError(f"{self.label}: claims {count} sections (extended numbering): not plausible")
        raw = self.read(self.shoff, count * _SHDR.size, "section header table")
        headers = list(_SHDR.iter_unpack(raw))
        out = []
        for hdr in headers:
            name_off, typ, flags, _addr, offset, size, link, info, align, entsize = hdr
            if typ != SHT_NOBITS and offset + size > self.length:
                raise ElfError(
                    f"{self.label}: section #{len(out)} spans {offset:#x}+{size:#x}, past the end "
                    f"of the {self.length}-byte file (truncated or corrupt)"
                )
            out.append(Section("", typ, flags, offset, size, link, info, align, entsize))
        if names_index < len(out):
            strtab = out[names_index]
            out = [
                Section(self.cstring(strtab, h[0]) if h[0] < strtab.size else "?", *_fields(s))
                for h, s in zip(headers, out)
            ]
        return out

    def section(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None

    def linked(self, section: Section) -> Section:
        if section.link >= len(self.sections):
            raise ElfError(f"{self.label}: {section.name} links to missing section #{section.link}")
        return self.sections[section.link]

    @cached_property
    def dynamic(self) -> list[tuple[int, int | str]]:
        """(tag, value) pairs; string-valued tags already decoded from .dynstr."""
        sec = self.section(".dynamic")
        if sec is None:
            return []
        strtab = self.linked(sec)
        out: list[tuple[int, int | str]] = []
        for tag, value in _DYN.iter_unpack(self.section_bytes(sec)[: sec.size // 16 * 16]):
            if tag == 0:
                break
            if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                out.append((tag, self.cstring(strtab, value)))
            else:
                out.append((tag, value))
        return out

    def dyn_strings(self, tag: int) -> list[str]:
        return [v for t, v in self.dynamic if t == tag]  # type: ignore[misc]

    @property
    def needed(self) -> list[str]:
        return self.dyn_strings(DT_NEEDED)

    @property
    def soname(self) -> str | None:
        names = self.dyn_strings(DT_SONAME)
        return names[0] if names else None

    @cached_property
    def version_needs(self) -> list[VersionNeed]:
        sec = self.section(".gnu.version_r")
        if sec is None:
            return []
        return [VersionNeed(f, tuple((n, w) for n, w, _ in vers)) for f, vers in self._verneed(sec)]

    def _verneed(self, sec: Section):
        strtab = self.linked(sec)
        data = self.section_bytes(sec)
        out, pos = [], 0
        for _ in range(min(sec.info or _MAX_VERSION_ENTRIES, _MAX_VERSION_ENTRIES)):
            if pos + _VERNEED.size > len(data):
                raise ElfError(f"{self.label}: .gnu.version_r entry at {pos} runs past the section")
            _ver, cnt, file_off, aux, nxt = _VERNEED.unpack_from(data, pos)
            versions, apos = [], pos + aux
            for _ in range(cnt):
                if apos + _VERNAUX.size > len(data):
                    raise ElfError(f"{self.label}: .gnu.version_r aux entry runs past the section")
                _hash, flags, other, name_off, anext = _VERNAUX.unpack_from(data, apos)
                versions.append((self.cstring(strtab, name_off), bool(flags & VER_FLG_WEAK), other))
                if anext == 0:
                    break
                apos += anext
            out.append((self.cstring(strtab, file_off), versions))
            if nxt == 0:
                break
            pos += nxt
        return out

    @cached_property
    def version_names(self) -> dict[int, str]:
        """versym index -> version name, for both needed (vna_other) and defined versions."""
        names: dict[int, str] = {}
        sec = self.section(".gnu.version_r")
        if sec is not None:
            for _file, vers in self._verneed(sec):
                for name, _weak, other in vers:
                    names[other] = name
        names.update(self.version_definitions)
        return names

    @cached_property
    def version_definitions(self) -> dict[int, str]:
        """versym index -> defined version name (the library's own base version excluded)."""
        sec = self.section(".gnu.version_d")
        if sec is None:
            return {}
        strtab = self.linked(sec)
        data = self.section_bytes(sec)
        out: dict[int, str] = {}
        pos = 0
        for _ in range(min(sec.info or _MAX_VERSION_ENTRIES, _MAX_VERSION_ENTRIES)):
            if pos + _VERDEF.size > len(data):
                raise ElfError(f"{self.label}: .gnu.version_d entry at {pos} runs past the section")
            _ver, flags, ndx, cnt, _hash, aux, nxt = _VERDEF.unpack_from(data, pos)
            if cnt and pos + aux + _VERDAUX.size <= len(data):
                name_off, _ = _VERDAUX.unpack_from(data, pos + aux)
                if not flags & 0x1:  # VER_FLG_BASE names the file itself, not a version
                    out[ndx & 0x7FFF] = self.cstring(strtab, name_off)
            if nxt == 0:
                break
            pos += nxt
        return out

    @cached_property
    def _dynsym(self) -> tuple[Section, Section, list[tuple], array | None]:
        sec = self.section(".dynsym")
        if sec is None:
            raise ElfError(f"{self.label}: no .dynsym section")
        if sec.entsize not in (0, _SYM.size):
            raise ElfError(f"{self.label}: .dynsym entry size {sec.entsize}, expected {_SYM.size}")
        count = sec.size // _SYM.size
        rows = list(_SYM.iter_unpack(self.read(sec.offset, count * _SYM.size, ".dynsym")))
        versym = None
        vsec = self.section(".gnu.version")
        if vsec is not None:
            versym = array("H")
            versym.frombytes(self.read(vsec.offset, min(vsec.size, count * 2) // 2 * 2, ".gnu.version"))
        return sec, self.linked(sec), rows, versym

    def dynstr_contains(self, needle: bytes) -> bool:
        """Substring test over .dynstr without decoding a single symbol."""
        sec = self.section(".dynstr")
        if sec is None:
            return False
        start = self.base + sec.offset
        return self.buf.find(needle, start, start + sec.size) >= 0

    def has_dynsym(self) -> bool:
        return self.section(".dynsym") is not None

    def _rows(self, undefined: bool | None, exported: bool = False):
        """(index, name, bind, other, shndx, version, hidden) of the selected non-local dynamic symbols.

        The hot loop of a libtorch-sized audit (100k+ symbols): locals, names read in place,
        rows filtered before their names are decoded.
        """
        _sec, strtab, rows, versym = self._dynsym
        names = self.version_names.get
        buf, find = self.buf, self.buf.find
        table_start = self.base + strtab.offset
        table_end = table_start + strtab.size
        versions = len(versym) if versym is not None else 0
        for index, (name_off, info, other, shndx, _value, _size) in enumerate(rows):
            bind = info >> 4
            if index == 0 or bind == STB_LOCAL:
                continue
            if exported:
                if shndx == SHN_UNDEF or bind not in _EXPORTED_BINDS or other & 3 not in (0, 3):
                    continue
            elif undefined is not None and (shndx == SHN_UNDEF) != undefined:
                continue
            start = table_start + name_off
            end = find(b"\0", start, table_end) if name_off < strtab.size else -1
            if end < 0:
                self.cstring(strtab, name_off)  # raises the ElfError that says what is wrong
            name = buf[start:end].decode("utf-8", "surrogateescape")
            if index < versions:
                raw = versym[index]
                yield index, name, bind, other, shndx, names(raw & 0x7FFF), bool(raw & VERSYM_HIDDEN)
            else:
                yield index, name, bind, other, shndx, None, False

    def symbols(self, *, undefined: bool | None = None) -> list[Symbol]:
        """Dynamic symbols; ``undefined=True``/``False`` filters before names are decoded."""
        return [Symbol(index, name, bind, shndx, other & 3, version, hidden)
                for index, name, bind, other, shndx, version, hidden in self._rows(undefined)]

    def export_table(self) -> dict[str, list[tuple[str | None, bool]]]:
        """name -> [(version, hidden)] of every exported symbol (Symbol.is_exported), no Symbol objects made."""
        table: dict[str, list[tuple[str | None, bool]]] = {}
        for _index, name, _bind, _other, _shndx, version, hidden in self._rows(None, exported=True):
            table.setdefault(name, []).append((version, hidden))
        return table

    # -- notes ------------------------------------------------------------
    def notes(self):
        """(name, type, desc bytes) of every SHT_NOTE section, bounds-checked."""
        for sec in self.sections:
            if sec.type == 7:  # SHT_NOTE
                yield from parse_notes(self.section_bytes(sec), 8 if sec.align == 8 else 4, self.label)


def _fields(sec: Section) -> tuple:
    return (sec.type, sec.flags, sec.offset, sec.size, sec.link, sec.info, sec.align, sec.entsize)


def _pad(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def parse_notes(data: bytes, align: int = 4, label: str = "note"):
    """Iterate an ELF note area: yields (name, type, desc). Raises ElfError on a lying size."""
    pos = 0
    while pos + _NOTE.size <= len(data):
        namesz, descsz, ntype = _NOTE.unpack_from(data, pos)
        name_start = pos + _NOTE.size
        desc_start = name_start + _pad(namesz, align)
        desc_end = desc_start + descsz
        if desc_end > len(data):
            raise ElfError(f"{label}: note at {pos} claims {namesz}+{descsz} bytes, past the end of its section")
        name = data[name_start:name_start + namesz].rstrip(b"\0").decode("ascii", "replace")
        yield name, ntype, data[desc_start:desc_end]
        pos = _pad(desc_end, align)


class MappedFile:
    """A read-only mmap of a file (an empty file maps to b"")."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self.buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self.size = size

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_elf(path: str | os.PathLike, label: str | None = None) -> tuple[MappedFile, ElfFile]:
    mapped = MappedFile(path)
    try:
        return mapped, ElfFile(mapped.buf, label=label or mapped.path)
    except BaseException:
        mapped.close()
        raise
