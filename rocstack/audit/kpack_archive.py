"""Streaming reader of KPAK archives (``*.kpack``), with bounded memory.

Format v1 (rocm-kpack ``python/rocm_kpack/kpack.py`` and ``compression.py``; the C loader's
``runtime/src/toc_parser.cpp``): a 16-byte header ``"KPAK"``, u32 version = 1, u64 offset of
the table of contents; blobs from the first 64-byte boundary; the TOC is one msgpack map
from that offset to the end of the file::

    {format_version, group_name, gfx_arch_family, gfx_arches: [str],
     compression_scheme: "none" | "zstd-per-kernel",
     blobs: [{offset, size}]                      # "none": absolute offsets, by ordinal
     zstd_offset, zstd_size,                      # "zstd-per-kernel": one region holding
                                                  #   u32 count, then count x (u32 size, zstd frame)
     toc: {"<kernel_name>#<co_index>": {arch: {type: "hsaco", ordinal, original_size}}}}

Memory: the archive is memory-mapped; the TOC is read once (capped by ``max_toc_bytes``); a
"none" blob is parsed in place; a zstd frame is decompressed one at a time through a
streaming reader that stops at the size the TOC declares (+1 byte to notice a lie), so a
decompression bomb costs at most ``max_code_object_bytes``. Each problem is one
:class:`~rocstack.audit.kpack.KpackFinding`; nothing raises on a malformed archive.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Iterator

import msgpack
import zstandard

from rocstack.audit.codeobject import CodeObject, parse_code_object
from rocstack.audit.elf import ElfError
from rocstack.audit.kpack import KpackFinding
from rocstack.audit.magic import KPACK_MAGIC

VERSION = 1
HEADER = struct.Struct("<4sIQ")
BLOB_ALIGNMENT = 64
SCHEMES = ("none", "zstd-per-kernel")
_U32 = struct.Struct("<I")
_HINT = "reinstall the device package that ships this archive; a damaged archive fails to load"


@dataclass(frozen=True)
class ArchiveLimits:
    max_toc_bytes: int = 256 << 20  # rocBLAS-sized TOCs are a few MB
    max_code_object_bytes: int = 2 << 30  # one decompressed code object (as AuditLimits.max_bundle_bytes)


@dataclass(frozen=True)
class TocEntry:
    key: str  # "<kernel_name>#<co_index>"
    arch: str  # the TOC's arch key: "gfx90a", "gfx90a:xnack-"
    ordinal: int
    original_size: int | None
    type: str


@dataclass
class KpackArchive:
    path: str  # host path
    where: str  # the name findings use (path inside the root)
    size: int = 0
    version: int | None = None
    toc_offset: int | None = None
    group_name: str | None = None
    gfx_arch_family: str | None = None
    gfx_arches: tuple[str, ...] = ()
    scheme: str | None = None
    entries: list[TocEntry] = field(default_factory=list)
    findings: list[KpackFinding] = field(default_factory=list)
    usable: bool = False  # the loader can open it (header and TOC parse)
    _blobs: list[tuple[int, int]] = field(default_factory=list, repr=False)  # "none": (offset, size)
    _zstd: tuple[int, int] | None = field(default=None, repr=False)  # (offset, size)
    _index: dict[str, list[str]] | None = field(default=None, repr=False)  # key -> arches

    def keys(self, arch: str) -> set[str]:
        return {e.key for e in self.entries if e.arch == arch}

    def arches_of(self, key: str) -> list[str]:
        """The TOC arches under which ``key`` has a code object."""
        if self._index is None:  # entries are final once open_archive returns
            self._index = {}
            for e in self.entries:
                self._index.setdefault(e.key, []).append(e.arch)
        return self._index.get(key, [])

    def has(self, key: str, arch: str) -> bool:
        return arch in self.arches_of(key)

    def _problem(self, message: str, evidence: str = "", severity: str = "error") -> None:
        self.findings.append(KpackFinding(severity, "kpack-archive", self.where, message, _HINT, evidence))


@dataclass
class ArchiveCodeObject:
    entry: TocEntry
    code_object: CodeObject | None  # None when the blob failed (its finding says why)
    finding: KpackFinding | None = None


def open_archive(path: str | os.PathLike, where: str | None = None,
                 limits: ArchiveLimits = ArchiveLimits()) -> KpackArchive:
    """Header and TOC of one archive, checked; blobs are not touched (see :func:`iter_code_objects`)."""
    archive = KpackArchive(os.fspath(path), where or os.fspath(path))
    try:
        with open(archive.path, "rb") as handle:
            archive.size = os.fstat(handle.fileno()).st_size
            if archive.size < HEADER.size:
                archive._problem(f"truncated: {archive.size} bytes, shorter than the {HEADER.size}-byte KPAK header")
                return archive
            magic, version, toc_offset = HEADER.unpack(handle.read(HEADER.size))
            if magic != KPACK_MAGIC:
                archive._problem(f"not a kpack archive (magic {magic!r}, expected {KPACK_MAGIC!r})")
                return archive
            archive.version, archive.toc_offset = version, toc_offset
            if version != VERSION:
                archive._problem(f"format version {version}; this reader and the loader know version {VERSION}")
                return archive
            if toc_offset < HEADER.size or toc_offset >= archive.size:
                archive._problem(f"TOC offset {toc_offset:#x} lies outside the {archive.size}-byte file "
                                 "(truncated archive or corrupt header)")
                return archive
            toc_size = archive.size - toc_offset
            if toc_size > limits.max_toc_bytes:
                archive._problem(f"TOC is {toc_size} bytes, over the {limits.max_toc_bytes}-byte limit")
                return archive
            handle.seek(toc_offset)
            raw = handle.read(toc_size)
    except OSError as exc:
        archive._problem(f"cannot be read: {exc.strerror or exc}")
        return archive
    toc = _unpack_toc(archive, raw)
    if toc is not None:
        _read_toc(archive, toc)
    return archive


def _unpack_toc(archive: KpackArchive, raw: bytes) -> dict | None:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    try:
        toc = unpacker.unpack()
    except msgpack.OutOfData:
        archive._problem(f"TOC at {archive.toc_offset:#x} ends mid-object: truncated archive")
        return None
    except Exception as exc:  # FormatError, StackError, ValueError, UnicodeDecodeError ...
        archive._problem(f"TOC at {archive.toc_offset:#x} is not valid msgpack ({type(exc).__name__})")
        return None
    if not isinstance(toc, dict):
        archive._problem(f"TOC is a msgpack {type(toc).__name__}, not a map")
        return None
    if unpacker.tell() != len(raw):
        archive._problem(f"{len(raw) - unpacker.tell()} bytes follow the TOC", severity="warning")
    return toc


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _read_toc(archive: KpackArchive, toc: dict) -> None:
    if toc.get("format_version") not in (None, VERSION):
        archive._problem(f"TOC format_version {toc.get('format_version')!r}, expected {VERSION}", severity="warning")
    archive.group_name = toc.get("group_name") if isinstance(toc.get("group_name"), str) else None
    family = toc.get("gfx_arch_family")
    archive.gfx_arch_family = family if isinstance(family, str) else None
    arches = toc.get("gfx_arches")
    if not isinstance(arches, list) or not all(isinstance(a, str) for a in arches):
        archive._problem("TOC gfx_arches is not a list of arch names: the loader matches no device to it")
        arches = [a for a in arches if isinstance(a, str)] if isinstance(arches, list) else []
    archive.gfx_arches = tuple(arches)
    scheme = toc.get("compression_scheme", "none")
    if scheme not in SCHEMES:
        archive._problem(f"unknown compression_scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        return
    archive.scheme = scheme
    if not _read_layout(archive, toc):
        return
    table = toc.get("toc")
    if not isinstance(table, dict):
        archive._problem("TOC has no 'toc' map of kernels")
        return
    count = len(archive._blobs) if scheme == "none" else None
    for key, per_arch in table.items():
        if not isinstance(key, str) or not isinstance(per_arch, dict):
            archive._problem(f"TOC entry {key!r} is not 'name#index' -> {{arch: entry}}")
            continue
        if "#" not in key or not key.rsplit("#", 1)[1].isdigit():
            archive._problem(f"TOC key {key!r} has no '#<co_index>' suffix: no loader request can match it",
                             severity="warning")
        for arch, meta in per_arch.items():
            ordinal = _int(meta.get("ordinal")) if isinstance(meta, dict) else None
            if not isinstance(arch, str) or ordinal is None:
                archive._problem(f"TOC entry {key}/{arch!r} has no valid ordinal")
                continue
            if count is not None and ordinal >= count:
                archive._problem(f"TOC entry {key} [{arch}] names blob #{ordinal}, but the archive has "
                                 f"{count} blobs (key without blob)")
                continue
            kind = meta.get("type", "hsaco")
            archive.entries.append(TocEntry(key, arch, ordinal, _int(meta.get("original_size")),
                                            kind if isinstance(kind, str) else "?"))
            if arch not in archive.gfx_arches:
                archive._problem(f"TOC entry {key} is filed under {arch}, which gfx_arches "
                                 f"({', '.join(archive.gfx_arches) or 'none'}) does not list: the loader never "
                                 "looks it up", severity="warning")
    archive.usable = True


def _read_layout(archive: KpackArchive, toc: dict) -> bool:
    end = archive.toc_offset or 0
    if archive.scheme == "none":
        blobs = toc.get("blobs")
        if not isinstance(blobs, list):
            archive._problem("scheme 'none' without a 'blobs' list")
            return False
        for index, blob in enumerate(blobs):
            offset = _int(blob.get("offset")) if isinstance(blob, dict) else None
            size = _int(blob.get("size")) if isinstance(blob, dict) else None
            if offset is None or size is None:
                archive._problem(f"blob #{index} has no valid offset/size")
                archive._blobs.append((0, 0))
                continue
            if offset < HEADER.size or offset + size > end:
                archive._problem(f"blob #{index} spans {offset:#x}+{size:#x}, outside the data area "
                                 f"{HEADER.size:#x}-{end:#x}")
            archive._blobs.append((offset, size))
        return True
    offset, size = _int(toc.get("zstd_offset")), _int(toc.get("zstd_size"))
    if offset is None or size is None:
        archive._problem("scheme 'zstd-per-kernel' without zstd_offset/zstd_size")
        return False
    if offset < HEADER.size or offset + size > end or size < _U32.size:
        archive._problem(f"zstd region {offset:#x}+{size:#x} lies outside the data area {HEADER.size:#x}-{end:#x}")
        return False
    archive._zstd = (offset, size)
    return True


def _frame_index(archive: KpackArchive, buf) -> list[tuple[int, int]] | None:
    """(offset, size) of each zstd frame, walking the u32 size prefixes within the region."""
    start, size = archive._zstd
    end = start + size
    (count,) = _U32.unpack_from(buf, start)
    if count > size // _U32.size:
        archive._problem(f"zstd region claims {count} frames, more than its {size} bytes can hold")
        return None
    frames, pos = [], start + _U32.size
    for index in range(count):
        if pos + _U32.size > end:
            archive._problem(f"zstd frame #{index} header lies past the end of the zstd region")
            return frames
        (length,) = _U32.unpack_from(buf, pos)
        pos += _U32.size
        if pos + length > end:
            archive._problem(f"zstd frame #{index} ({length} bytes at {pos:#x}) runs past the zstd region")
            return frames
        frames.append((pos, length))
        _release(buf, pos - _U32.size, length + _U32.size)  # the walk only needed its size prefix
        pos += length
    return frames


def iter_code_objects(archive: KpackArchive, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[ArchiveCodeObject]:
    """Verify and decode each TOC entry's blob, one at a time; a failed blob is yielded with its finding."""
    if not archive.usable:
        return
    try:
        handle = open(archive.path, "rb")
    except OSError as exc:
        archive._problem(f"cannot be read: {exc.strerror or exc}")
        return
    with handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        frames = _frame_index(archive, buf) if archive.scheme == "zstd-per-kernel" else None
        for entry in sorted(archive.entries, key=lambda e: e.ordinal):
            item = _decode(archive, entry, buf, frames, limits)
            _release(buf, *_region(archive, entry, frames))
            yield item


def _region(archive: KpackArchive, entry: TocEntry, frames) -> tuple[int, int]:
    if archive.scheme == "none":
        return archive._blobs[entry.ordinal]
    return frames[entry.ordinal] if frames and entry.ordinal < len(frames) else (0, 0)


def _release(buf, offset: int, size: int) -> None:
    """Unmap the pages of a region once read: a mapped archive would otherwise stay resident (file-backed
    RSS, charged to a container's memory) as the reader walks through it."""
    if size <= 0 or not hasattr(buf, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    start = offset - offset % mmap.PAGESIZE
    end = min(offset + size, len(buf))
    if end > start:
        buf.madvise(mmap.MADV_DONTNEED, start, end - start)


def read_blob(archive: KpackArchive, entry: TocEntry, limits: ArchiveLimits = ArchiveLimits()) -> bytes:
    """The decoded bytes of one entry (for cross-checks); raises ValueError with the problem."""
    with open(archive.path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        frames = _frame_index(archive, buf) if archive.scheme == "zstd-per-kernel" else None
        data, base, length, problem = _blob(archive, entry, buf, frames, limits)
        if problem:
            raise ValueError(problem)
        return bytes(data[base:base + length])


def _blob(archive: KpackArchive, entry: TocEntry, buf, frames, limits: ArchiveLimits):
    """(buffer, base, length, problem) holding the entry's code object."""
    if archive.scheme == "none":
        offset, size = archive._blobs[entry.ordinal]
        if offset < HEADER.size or offset + size > (archive.toc_offset or 0):
            return None, 0, 0, f"blob #{entry.ordinal} lies outside the data area"
        if entry.original_size is not None and entry.original_size != size:
            return None, 0, 0, f"blob #{entry.ordinal} is {size} bytes, the TOC says {entry.original_size}"
        return buf, offset, size, None
    if frames is None or entry.ordinal >= len(frames):
        return None, 0, 0, f"no zstd frame #{entry.ordinal} (key without blob)"
    offset, size = frames[entry.ordinal]
    cap = limits.max_code_object_bytes
    expected = entry.original_size
    if expected is not None and expected > cap:
        return None, 0, 0, f"declares {expected} bytes, over the {cap}-byte limit"
    try:
        declared = zstandard.frame_content_size(buf[offset:offset + min(size, 18)])
    except zstandard.ZstdError as exc:
        return None, 0, 0, f"zstd frame #{entry.ordinal} has a corrupt header ({exc})"
    if declared > cap:
        return None, 0, 0, f"zstd frame #{entry.ordinal} declares {declared} bytes, over the {cap}-byte limit"
    want = min(cap, expected if expected is not None else cap) + 1  # one more byte exposes a lying size
    try:
        data = _decompress(memoryview(buf)[offset:offset + size], want)
    except zstandard.ZstdError as exc:
        return None, 0, 0, f"zstd frame #{entry.ordinal} does not decompress ({exc})"
    if expected is not None and len(data) != expected:
        more = "or more " if len(data) == want else ""
        return None, 0, 0, (f"zstd frame #{entry.ordinal} decompresses to {more}{len(data)} bytes, the TOC says "
                            f"{expected}")
    if declared >= 0 and len(data) != declared:
        return None, 0, 0, (f"zstd frame #{entry.ordinal} decompresses to {len(data)} bytes, its header says "
                            f"{declared} (truncated frame)")
    return data, 0, len(data), None


def _decompress(frame, limit: int) -> bytes:
    """At most ``limit`` bytes of one zstd frame; the output is all the memory this costs."""
    chunks, total = [], 0
    with zstandard.ZstdDecompressor().stream_reader(frame, read_across_frames=False) as reader:
        while total < limit:
            chunk = reader.read(min(1 << 20, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    return b"".join(chunks)


def _decode(archive: KpackArchive, entry: TocEntry, buf, frames, limits: ArchiveLimits) -> ArchiveCodeObject:
    where = f"{entry.key} [{entry.arch}]"
    data, base, length, problem = _blob(archive, entry, buf, frames, limits)
    if problem is None:
        try:
            obj = parse_code_object(data, base, length, where=f"kpack {os.path.basename(archive.where)} {where}",
                                    label=f"{archive.where} {where}")
        except ElfError as exc:
            problem = f"not a valid AMDGPU code object: {exc}"
        else:
            processor = entry.arch.split(":")[0]
            if obj.processor is not None and obj.processor != processor:
                problem = f"filed under {entry.arch} but its code object is for {obj.target_id}"
            else:
                return ArchiveCodeObject(entry, obj)
    finding = KpackFinding("error", "kpack-archive", archive.where, f"{where}: {problem}", _HINT)
    archive.findings.append(finding)
    return ArchiveCodeObject(entry, None, finding)
