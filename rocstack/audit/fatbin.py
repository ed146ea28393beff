"""Clang offload bundles (the contents of ``.hip_fatbin``), plain and compressed.

Formats (clang ``OffloadBundler.cpp``, llvm ``Object/OffloadBundle.cpp``):
plain bundle = ``__CLANG_OFFLOAD_BUNDLE__``, u64 entry count, then per entry u64
offset (from the bundle start), u64 size, u64 id length, id bytes. Compressed
bundle "CCOB": u16 version, u16 method (0 zlib, 1 zstd), then
v1: u32 uncompressed size, u64 hash (header 20 bytes);
v2: u32 total size, u32 uncompressed size, u64 hash (24);
v3: u64 total size, u64 uncompressed size, u64 hash (32).
A v2/v3 bundle ends at its total size (its payload may contain the bytes "CCOB");
only v1 has to be delimited by scanning. Linked HIP libraries hold many bundles
back to back, each starting on a 4096-byte boundary.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
import tempfile
import zlib
from dataclasses import dataclass, field

import zstandard

PLAIN_MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
CCOB_MAGIC = b"CCOB"
_HEADER = {1: struct.Struct("<4sHHIQ"), 2: struct.Struct("<4sHHIIQ"), 3: struct.Struct("<4sHHQQQ")}
_METHODS = {0: "zlib", 1: "zstd"}
DEFAULT_MAX_UNCOMPRESSED = 2 << 30  # one decompressed bundle; real ones are megabytes


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
        if len(parts) >= 6:  # kind, arch, vendor, os, env, target (target may contain no '-')
            return "-".join(parts[5:]) or None
        if len(parts) == 5 and parts[4].startswith("gfx"):  # old 3-part triple: hip-amdgcn-amd-amdhsa-gfx906
            return parts[4]
        return None


@dataclass
class Bundle:
    offset: int  # within the section
    stored_size: int  # bytes it occupies in the section
    compression: dict | None  # {"version", "method", "uncompressed_size"} for CCOB
    entries: list[BundleEntry] = field(default_factory=list)
    payload: object = None  # buffer the entry offsets refer to (bytes or the mapped file)
    payload_base: int = 0

    def summary(self) -> dict:
        return {
            "offset": self.offset,
            "size": self.stored_size,
            "compression": self.compression,
            "entries": [{"id": e.id, "size": e.size} for e in self.entries],
        }


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


_CHUNK = 1 << 20
SPILL_BYTES = 64 << 20  # a decompressed bundle larger than this goes to a temporary file, not memory


class _Sink:
    """Decompressed bytes: in memory while small, then a temporary file mapped back (bounded RSS)."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0
        self.file = None
        self.md5 = hashlib.md5()

    def write(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.size += len(chunk)
        if self.file is None and self.size > SPILL_BYTES:
            self.file = tempfile.TemporaryFile(prefix="rocstack-bundle-")
            for part in self.parts:
                self.file.write(part)
            self.parts = []
        if self.file is not None:
            self.file.write(chunk)
        else:
            self.parts.append(chunk)

    def result(self):
        if self.file is None:
            return b"".join(self.parts)
        self.file.flush()
        mapped = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        self.file.close()  # the mapping keeps the unlinked file alive until it is dropped
        return mapped


def _inflate_zlib(view, limit: int, sink: _Sink) -> None:
    inflater = zlib.decompressobj()
    for at in range(0, len(view), _CHUNK):
        pending = view[at:at + _CHUNK]
        while pending and sink.size < limit:
            sink.write(inflater.decompress(pending, min(_CHUNK, limit - sink.size)))
            pending = inflater.unconsumed_tail
        if inflater.eof or sink.size >= limit:
            return


def _inflate_zstd(view, limit: int, sink: _Sink) -> None:
    with zstandard.ZstdDecompressor().stream_reader(view) as reader:
        while sink.size < limit:
            chunk = reader.read(min(limit - sink.size, _CHUNK))
            if not chunk:
                return
            sink.write(chunk)


def _decompress(method: int, view, expected: int, max_size: int) -> _Sink:
    """Inflate at most ``expected + 1`` bytes: a lying header cannot make us inflate a bomb."""
    if expected > max_size:
        raise BundleError(f"compressed bundle claims {expected} uncompressed bytes, over the {max_size}-byte limit")
    sink = _Sink()
    try:
        if method == 0:
            _inflate_zlib(view, expected + 1, sink)
        elif method == 1:
            _inflate_zstd(view, expected + 1, sink)
        else:
            raise BundleError(f"unknown compression method {method} (0 zlib and 1 zstd are known)")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise BundleError(f"corrupt {_METHODS.get(method, method)} stream: {exc}") from None
    if sink.size != expected:
        raise BundleError(f"compressed bundle decompressed to {sink.size} bytes, header says {expected}")
    return sink


def parse_compressed(buf, start: int, end: int, max_size: int) -> tuple[Bundle, bytes]:
    """A CCOB bundle at ``buf[start:end]``: the Bundle and its decompressed bytes."""
    if end - start < 8:
        raise BundleError(f"compressed bundle header at {start:#x} is truncated")
    (version,) = struct.unpack("<H", buf[start + 4:start + 6])
    header = _HEADER.get(version)
    if header is None:
        raise BundleError(f"compressed bundle at {start:#x} has unknown version {version} (1, 2, 3 are known)")
    if end - start < header.size:
        raise BundleError(f"compressed bundle v{version} header at {start:#x} is truncated")
    fields = header.unpack(buf[start:start + header.size])
    method = fields[2]
    if version == 1:
        total, uncompressed = None, fields[3]
        nxt = _next_magic(buf, start + header.size, end)
        stored = (nxt if nxt >= 0 else end) - start
    else:
        total, uncompressed = fields[3], fields[4]
        if total < header.size or start + total > end:
            raise BundleError(
                f"compressed bundle v{version} at {start:#x} claims total size {total}, "
                f"but only {end - start} bytes remain"
            )
        stored = total
    view = memoryview(buf)[start + header.size:start + stored]  # no copy of the compressed bytes
    try:
        sink = _decompress(method, view, uncompressed, max_size)
    finally:
        view.release()
    data = sink.result()
    entries, _ = parse_plain(data, 0, len(data))
    # the header's hash is the first 8 bytes of the MD5 of the uncompressed bundle, little-endian
    # (clang OffloadBundler: MD5Result::low()); clang checks it only in verbose mode, so a mismatch
    # means damage that loads anyway
    digest = int.from_bytes(sink.md5.digest()[:8], "little")
    info = {"version": version, "method": _METHODS.get(method, str(method)), "uncompressed_size": uncompressed,
            "hash_ok": digest == fields[-1]}
    return Bundle(start, stored, info, entries, data, 0), data


def _next_magic(buf, start: int, end: int) -> int:
    hits = [i for i in (buf.find(PLAIN_MAGIC, start, end), buf.find(CCOB_MAGIC, start, end)) if i >= 0]
    return min(hits) if hits else -1


def iter_bundles(buf, start: int, size: int, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED):
    """Yield every bundle in ``buf[start:start+size]`` (one at a time: decompressed data is not kept).

    Raises BundleError at the first bundle that cannot be trusted; bundles before
    it have been yielded already.
    """
    end = start + size
    pos = start
    found = 0
    while pos < end:
        at = _next_magic(buf, pos, end)
        if at < 0:
            if found == 0:
                raise BundleError("no offload bundle (neither __CLANG_OFFLOAD_BUNDLE__ nor CCOB) in the section")
            return
        if buf[at:at + 4] == CCOB_MAGIC:
            bundle, _ = parse_compressed(buf, at, end, max_uncompressed)
        else:
            entries, length = parse_plain(buf, at, end)
            bundle = Bundle(at, length, None, entries, buf, at)
        bundle.offset = at - start
        found += 1
        yield bundle
        pos = at + max(bundle.stored_size, 1)
