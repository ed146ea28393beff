"""Clang offload bundles (``.hip_fatbin`` contents and standalone bundle files), plain and compressed.

Formats (clang ``OffloadBundler.cpp``, llvm ``Object/OffloadBundle.cpp``):
plain bundle = ``__CLANG_OFFLOAD_BUNDLE__``, u64 entry count, then per entry u64
offset (from the bundle start), u64 size, u64 id length, id bytes. Compressed
bundles ("CCOB", :mod:`rocstack.audit.ccob`) are bounded by their total-size field
(v2/v3; their payload may contain the bytes "CCOB"); only v1 has to be delimited by
scanning. Linked HIP libraries hold many bundles back to back, each starting on a
4096-byte boundary.

Memory stays bounded whatever the size: a compressed bundle is decompressed as a
stream and each code object is handed out on its own (whole up to ``ccob.SPILL_BYTES``,
else only its headers and notes), never the whole bundle; pages of a mapped file are
given back once a bundle or code object has been read. The MD5 in a CCOB header is
checked only on request (``verify_hash``): clang itself checks it only in verbose mode,
and hashing costs as much as decompressing.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from typing import Iterator

from rocstack.audit.magic import CCOB_MAGIC, PLAIN_MAGIC

DEFAULT_MAX_UNCOMPRESSED = 4 << 30  # one decompressed bundle; RCCL 7.2's single bundle inflates to 1.2 GB
_PAGE = mmap.PAGESIZE
# After a bundle, the next one starts at the next 4096-byte boundary (clang aligns .hip_fatbin input
# sections); look for it this far before falling back to a scan of the rest of the section.
_SCAN_WINDOW = 1 << 20


class BundleError(Exception):
    """A bundle whose header, counts or sizes cannot be trusted."""


@dataclass
class BundleEntry:
    id: str
    offset: int  # from the start of the (decompressed) bundle
    size: int

    @property
    def kind(self) -> str:
        return self.id.split("-", 1)[0]

    @property
    def is_host(self) -> bool:
        return self.kind == "host"

    @property
    def target_id(self) -> str | None:
        """``gfx942:sramecc+:xnack-`` from ``hipv4-amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-``."""
        if self.is_host:
            return None
        parts = self.id.split("-")
        if len(parts) >= 6:  # kind, arch, vendor, os, env, target (the target may contain '-')
            return "-".join(parts[5:]) or None
        if len(parts) == 5 and parts[4].startswith("gfx"):  # old 3-part triple: hip-amdgcn-amd-amdhsa-gfx906
            return parts[4]
        return None


@dataclass
class Bundle:
    offset: int  # within the scanned range (section or file)
    stored_size: int  # bytes it occupies there
    compression: dict | None  # {"version", "method", "uncompressed_size", "hash_ok"} for CCOB
    entries: list[BundleEntry] = field(default_factory=list)
    _objects: Iterator | None = field(default=None, repr=False)

    def code_objects(self) -> Iterator[tuple[BundleEntry, object, int, int]]:
        """(entry, buffer, start, available) of every device entry with bytes, in file order; call once.

        ``available`` < ``entry.size`` when only the code object's first bytes (headers and
        notes) were kept. For a compressed bundle this decompresses the stream, so damage
        found there raises BundleError here, and ``compression["hash_ok"]`` is known only once
        it is exhausted. The buffer is valid until the next item is requested.
        """
        objects, self._objects = self._objects, None
        if objects is not None:
            yield from objects

    def summary(self) -> dict:
        return {
            "offset": self.offset,
            "size": self.stored_size,
            "compression": self.compression,
            "entries": [{"id": e.id, "size": e.size} for e in self.entries],
        }


def release(buf, start: int, length: int) -> None:
    """Give back the pages of a mapped range once read: a 1 GB fat binary must not stay resident."""
    if not isinstance(buf, mmap.mmap) or length < _PAGE:
        return
    first = start // _PAGE * _PAGE
    end = min(len(buf), start + length) // _PAGE * _PAGE
    if end > first:
        try:
            buf.madvise(mmap.MADV_DONTNEED, first, end - first)
        except (OSError, ValueError, AttributeError):  # not supported here: only memory use differs
            pass


def parse_plain(buf, start: int, end: int) -> tuple[list[BundleEntry], int]:
    """Entries of a plain bundle at ``buf[start:end]`` and the bundle's length."""
    limit = end - start
    if limit < len(PLAIN_MAGIC) + 8 or buf[start:start + len(PLAIN_MAGIC)] != PLAIN_MAGIC:
        raise BundleError(f"no offload bundle magic at {start:#x}")
    (count,) = struct.unpack("<Q", buf[start + 24:start + 32])
    # Each entry header needs at least 24 bytes: a larger count is a lie, not a loop bound.
    if count > (limit - 32) // 24:
        raise BundleError(f"bundle at {start:#x} claims {count} entries, more than its {limit} bytes can hold")
    pos, length, entries = start + 32, 32, []
    for index in range(count):
        if pos + 24 > end:
            raise BundleError(f"bundle at {start:#x}: entry {index} header runs past the end")
        offset, size, id_len = struct.unpack("<QQQ", buf[pos:pos + 24])
        if pos + 24 + id_len > end:
            raise BundleError(f"bundle at {start:#x}: entry {index} id ({id_len} bytes) runs past the end")
        entry_id = bytes(buf[pos + 24:pos + 24 + id_len]).decode("ascii", "replace")
        pos += 24 + id_len
        if offset + size > limit:
            raise BundleError(
                f"bundle at {start:#x}: entry {entry_id!r} at +{offset:#x} size {size} lies past the "
                f"end of the {limit}-byte data"
            )
        entries.append(BundleEntry(entry_id, offset, size))
        length = max(length, offset + size)
    return entries, max(length, pos - start)


def _device_entries(entries: list[BundleEntry]) -> list[BundleEntry]:
    return sorted((e for e in entries if not e.is_host and e.size), key=lambda e: e.offset)


def _plain_objects(buf, start: int, entries: list[BundleEntry]):
    for entry in _device_entries(entries):
        yield entry, buf, start + entry.offset, entry.size
        release(buf, start + entry.offset, entry.size)


def _next_magic(buf, start: int, end: int, window: int | None = _SCAN_WINDOW) -> int:
    """Offset of the next bundle magic in ``buf[start:end]``, -1 if none.

    Looks in ``window`` bytes first: scanning a whole 1 GB section after every bundle made
    the audit of rocBLAS quadratic and pulled every page of the file into memory.
    """
    cuts = [start, min(end, start + window), end] if window else [start, end]
    for lo, hi in zip(cuts, cuts[1:]):
        stop = min(end, hi + len(PLAIN_MAGIC))  # a magic across the window's edge belongs to the window
        hits = [i for i in (buf.find(PLAIN_MAGIC, lo, stop), buf.find(CCOB_MAGIC, lo, stop)) if i >= 0]
        if hits:
            return min(hits)
    return -1
