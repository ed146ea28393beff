"""Where the integer fields and the interesting byte ranges of a seed are, format by format.

Read from the (well-formed) seed with plain ``struct``, independently of the parsers under
test, so the mutator can overwrite a header's counts, offsets and sizes rather than hope a
random byte lands on one. Layouts: System V gABI (ELF header, Elf64_Phdr, Elf64_Shdr,
Elf64_Dyn, Elf64_Sym, notes, GNU version tables), clang ``OffloadBundler.cpp`` (plain and
CCOB bundles), rocm-kpack ``kpack.py`` (KPAK header, TOC, zstd frame table), SQLite's file
format (database header, b-tree page headers; big-endian).
"""

from __future__ import annotations

import struct

import msgpack

from fuzz_mutate import Field, Region

_SHDR = struct.Struct("<IIQQQQIIQQ")
_EHDR_FIELDS = (("EI_CLASS", 4, 1), ("EI_DATA", 5, 1), ("EI_OSABI", 7, 1), ("EI_ABIVERSION", 8, 1),
                ("e_type", 16, 2), ("e_machine", 18, 2), ("e_version", 20, 4), ("e_entry", 24, 8),
                ("e_phoff", 32, 8), ("e_shoff", 40, 8), ("e_flags", 48, 4), ("e_ehsize", 52, 2),
                ("e_phentsize", 54, 2), ("e_phnum", 56, 2), ("e_shentsize", 58, 2), ("e_shnum", 60, 2),
                ("e_shstrndx", 62, 2))
_PHDR_FIELDS = (("p_type", 0, 4), ("p_flags", 4, 4), ("p_offset", 8, 8), ("p_vaddr", 16, 8), ("p_filesz", 32, 8),
                ("p_memsz", 40, 8), ("p_align", 48, 8))
_SHDR_FIELDS = (("sh_name", 0, 4), ("sh_type", 4, 4), ("sh_addr", 16, 8), ("sh_offset", 24, 8), ("sh_size", 32, 8),
                ("sh_link", 40, 4), ("sh_info", 44, 4), ("sh_addralign", 48, 8), ("sh_entsize", 56, 8))
# sections whose bytes the readers decode: byte operations are aimed into them
_HOT_SECTIONS = (".dynamic", ".dynsym", ".dynstr", ".gnu.version", ".gnu.version_r", ".gnu.version_d",
                 ".hip_fatbin", ".hipFatBinSegment", ".rocm_kpack_ref", ".rela.dyn", ".rela.plt", ".relr.dyn")
_MAX_ENTRIES = 32  # table entries per section given their own fields
SHT_NOTE, SHT_DYNAMIC, SHT_DYNSYM = 7, 6, 11


def _fields(base: int, specs, prefix: str) -> list[Field]:
    return [Field(base + offset, width, False, f"{prefix}{name}") for name, offset, width in specs]


def elf_layout(data: bytes, base: int = 0, label: str = "") -> tuple[list[Field], list[Region]]:
    """Header, program and section header fields; counts and sizes inside the tables the audit reads."""
    fields = _fields(base, _EHDR_FIELDS, label)
    regions = [Region(base, base + 64, "bytes")]
    if len(data) < base + 64 or data[base:base + 4] != b"\x7fELF":
        return fields, regions
    phoff, shoff = struct.unpack_from("<QQ", data, base + 32)
    phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHH", data, base + 56)
    for index in range(min(phnum, 64)):
        fields += _fields(base + phoff + index * 56, _PHDR_FIELDS, f"{label}phdr{index}.")
    if phnum:
        regions.append(Region(base + phoff, base + phoff + phnum * 56, "bytes"))
    if not shoff or shentsize != 64 or base + shoff + shnum * 64 > len(data):
        return fields, regions
    headers = [_SHDR.unpack_from(data, base + shoff + i * 64) for i in range(shnum)]
    regions.append(Region(base + shoff, base + shoff + shnum * 64, "bytes"))
    names = headers[shstrndx] if shstrndx < shnum else None

    def name_of(header) -> str:
        if names is None:
            return ""
        start = base + names[4] + header[0]
        end = data.find(b"\0", start, base + names[4] + names[5])
        return data[start:end].decode("ascii", "replace") if end >= 0 else ""

    for index, header in enumerate(headers):
        name = name_of(header)
        fields += _fields(base + shoff + index * 64, _SHDR_FIELDS, f"{label}{name or 'shdr' + str(index)}.")
        typ, offset, size, entsize = header[1], base + header[4], header[5], header[9]
        if typ == 8 or offset + size > len(data):  # SHT_NOBITS
            continue
        if name in _HOT_SECTIONS or typ == SHT_NOTE:
            regions.append(Region(offset, offset + size, "bytes"))
        if name == ".rocm_kpack_ref":
            regions.append(Region(offset, offset + size, "msgpack", resizable=False))
        if typ == SHT_NOTE:
            _notes(data, offset, size, fields, regions, f"{label}{name}.")
        elif typ == SHT_DYNAMIC:
            fields += [Field(offset + i * 16 + 8, 8, False, f"{label}d_val{i}") for i in range(min(size // 16, _MAX_ENTRIES))]
        elif typ == SHT_DYNSYM:
            for i in range(1, min(size // 24, _MAX_ENTRIES)):
                fields += _fields(offset + i * 24, (("st_name", 0, 4), ("st_info", 4, 1), ("st_shndx", 6, 2),
                                                    ("st_value", 8, 8)), f"{label}sym{i}.")
        elif name in (".gnu.version_r", ".gnu.version_d"):
            fields += [Field(offset + at, width, False, f"{label}{name}+{at}")
                       for at in range(0, min(size, 96), 4) for width in (2, 4) if at + width <= size]
        elif name == ".hipFatBinSegment":
            for i in range(min(size // 24, _MAX_ENTRIES)):
                fields += _fields(offset + i * 24, (("magic", 0, 4), ("version", 4, 4), ("pointer", 8, 8),
                                                    ("co_index", 16, 4)), f"{label}wrapper{i}.")
        elif name in (".rela.dyn", ".rela.plt", ".relr.dyn"):
            step = entsize or (24 if name.startswith(".rela") else 8)
            fields += [Field(offset + i * step + (8 if step == 24 else 0), 8, False, f"{label}{name}[{i}]")
                       for i in range(min(size // step, _MAX_ENTRIES))]
        elif name == ".hip_fatbin":
            more_fields, more_regions = bundle_layout(data, offset, f"{label}fatbin.")
            fields += more_fields
            regions += more_regions
    return fields, regions


def _notes(data: bytes, offset: int, size: int, fields: list[Field], regions: list[Region], label: str) -> None:
    pos = 0
    while pos + 12 <= size:
        namesz, descsz, ntype = struct.unpack_from("<III", data, offset + pos)
        fields += [Field(offset + pos, 4, False, f"{label}namesz"), Field(offset + pos + 4, 4, False, f"{label}descsz"),
                   Field(offset + pos + 8, 4, False, f"{label}type")]
        desc = offset + pos + 12 + (namesz + 3) // 4 * 4
        if ntype == 32 and desc + descsz <= len(data):  # NT_AMDGPU_METADATA: msgpack, same length kept
            regions.append(Region(desc, desc + descsz, "msgpack", resizable=False))
        pos = (desc - offset) + (descsz + 3) // 4 * 4


def bundle_layout(data: bytes, base: int = 0, label: str = "") -> tuple[list[Field], list[Region]]:
    """Plain bundle: entry count and each entry's offset, size and id length, then its code object's
    fields; CCOB: version, method and size fields of the header."""
    fields: list[Field] = []
    regions = [Region(base, min(len(data), base + 32), "bytes")]
    if data[base:base + 4] == b"CCOB":
        version = struct.unpack_from("<H", data, base + 4)[0]
        widths = {1: ((8, 4),), 2: ((8, 4), (12, 4)), 3: ((8, 8), (16, 8))}.get(version, ())
        fields += [Field(base + 4, 2, False, f"{label}ccob.version"), Field(base + 6, 2, False, f"{label}ccob.method")]
        fields += [Field(base + at, width, False, f"{label}ccob.size@{at}") for at, width in widths]
        return fields, regions
    if data[base:base + 24] != b"__CLANG_OFFLOAD_BUNDLE__":
        return fields, regions
    fields.append(Field(base + 24, 8, False, f"{label}count"))
    (count,) = struct.unpack_from("<Q", data, base + 24)
    pos = base + 32
    for index in range(min(count, _MAX_ENTRIES)):
        offset, size, id_len = struct.unpack_from("<QQQ", data, pos)
        fields += [Field(pos + at, 8, False, f"{label}entry{index}.{what}")
                   for at, what in ((0, "offset"), (8, "size"), (16, "id_len"))]
        if size and data[base + offset:base + offset + 4] == b"\x7fELF":
            more_fields, more_regions = elf_layout(data, base + offset, f"{label}entry{index}.")
            fields += more_fields
            regions += more_regions
        pos += 24 + id_len
    regions.append(Region(base + 32, pos, "bytes"))
    return fields, regions


def kpack_layout(data: bytes) -> tuple[list[Field], list[Region]]:
    """KPAK header, the TOC (msgpack to the end of the file), the zstd frame table or the blobs' code objects."""
    fields = [Field(4, 4, False, "kpak.version"), Field(8, 8, False, "kpak.toc_offset")]
    regions = [Region(0, 16, "bytes")]
    (toc_offset,) = struct.unpack_from("<Q", data, 8)
    regions.append(Region(toc_offset, len(data), "msgpack"))
    toc = msgpack.unpackb(data[toc_offset:], raw=False, strict_map_key=False)
    if toc.get("compression_scheme") == "zstd-per-kernel":
        start = toc["zstd_offset"]
        fields.append(Field(start, 4, False, "zstd.count"))
        (count,) = struct.unpack_from("<I", data, start)
        pos = start + 4
        for index in range(min(count, _MAX_ENTRIES)):
            fields.append(Field(pos, 4, False, f"zstd.frame{index}.size"))
            (size,) = struct.unpack_from("<I", data, pos)
            regions.append(Region(pos + 4, pos + 4 + min(size, 32), "bytes"))  # the frame header
            pos += 4 + size
    else:
        for index, blob in enumerate(toc.get("blobs", [])[:_MAX_ENTRIES]):
            more_fields, more_regions = elf_layout(data, blob["offset"], f"blob{index}.")
            fields += more_fields
            regions += more_regions
    return fields, regions


_SQLITE_HEADER = (("page_size", 16, 2), ("write_version", 18, 1), ("read_version", 19, 1), ("reserved", 20, 1),
                  ("max_fraction", 21, 1), ("min_fraction", 22, 1), ("leaf_fraction", 23, 1),
                  ("change_counter", 24, 4), ("page_count", 28, 4), ("freelist_trunk", 32, 4),
                  ("freelist_count", 36, 4), ("schema_cookie", 40, 4), ("schema_format", 44, 4),
                  ("cache_size", 48, 4), ("largest_root", 52, 4), ("encoding", 56, 4), ("user_version", 60, 4),
                  ("vacuum", 64, 4), ("valid_for", 92, 4), ("sqlite_version", 96, 4))


def sqlite_layout(data: bytes) -> tuple[list[Field], list[Region]]:
    """The 100-byte database header and each b-tree page's header and first cell pointers (big-endian)."""
    fields = [Field(offset, width, True, f"sqlite.{name}") for name, offset, width in _SQLITE_HEADER]
    regions = [Region(0, 100, "bytes")]
    page_size = struct.unpack_from(">H", data, 16)[0] or 65536
    for page in range(min(len(data) // page_size, _MAX_ENTRIES)):
        start = page * page_size + (100 if page == 0 else 0)
        kind = data[start]
        if kind not in (2, 5, 10, 13):  # interior/leaf index/table b-tree pages
            continue
        header = 12 if kind in (2, 5) else 8
        fields += [Field(start + 1, 2, True, f"page{page + 1}.freeblock"),
                   Field(start + 3, 2, True, f"page{page + 1}.cells"),
                   Field(start + 5, 2, True, f"page{page + 1}.content")]
        if header == 12:
            fields.append(Field(start + 8, 4, True, f"page{page + 1}.right"))
        (cells,) = struct.unpack_from(">H", data, start + 3)
        fields += [Field(start + header + 2 * i, 2, True, f"page{page + 1}.cell{i}") for i in range(min(cells, 8))]
        regions.append(Region(start, start + header + 2 * cells, "bytes"))
    return fields, regions


def msgpack_layout(data: bytes) -> tuple[list[Field], list[Region]]:
    return [], [Region(0, len(data), "msgpack")]


def json_layout(data: bytes) -> tuple[list[Field], list[Region]]:
    return [], [Region(0, len(data), "json")]
