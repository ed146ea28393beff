"""Compressed offload bundles ("CCOB"), read as a bounded stream.

Layout (clang ``OffloadBundler.cpp``): magic, u16 version, u16 method (0 zlib, 1 zstd),
then v1: u32 uncompressed size, u64 hash (header 20 bytes); v2: u32 total size, u32
uncompressed size, u64 hash (24); v3: u64 total size, u64 uncompressed size, u64 hash (32).
The payload decompresses to a plain bundle. The entry table is read from the first
decompressed bytes; each code object is then handed out on its own (whole up to
``SPILL_BYTES``, else only its headers and PT_NOTE metadata), never the whole bundle.
"""

from __future__ import annotations

import struct
import zlib

from rocstack.audit.fatbin import Bundle, BundleEntry, BundleError, _device_entries, _next_magic, release
from rocstack.audit.magic import PLAIN_MAGIC

_HEADER = {1: struct.Struct("<4sHHIQ"), 2: struct.Struct("<4sHHIIQ"), 3: struct.Struct("<4sHHQQQ")}
_METHODS = {0: "zlib", 1: "zstd"}
_CHUNK = 1 << 20
SPILL_BYTES = 1 << 20  # a decompressed code object larger than this is read only up to its notes
MAX_PREFIX_BYTES = 256 << 20  # ... whose headers and notes must each fit in this many bytes
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr


class _Source:
    """Sequential reads over ``buf[start:end]`` that give the pages back behind themselves."""

    def __init__(self, buf, start: int, end: int):
        self.buf, self.pos, self.end, self._released = buf, start, end, start

    def read(self, size: int = -1) -> bytes:
        size = self.end - self.pos if size is None or size < 0 else min(size, self.end - self.pos)
        data = bytes(self.buf[self.pos:self.pos + size])
        self.pos += size
        if self.pos - self._released >= 16 * _CHUNK:
            release(self.buf, self._released, self.pos - self._released)
            self._released = self.pos
        return data


_DECOMPRESSOR: list = []


def _zstd():
    """One zstd context for every stream: its window (up to 128 MB for bundles clang packed with
    long-distance matching) is allocated once, not once per bundle file. Imported on first use:
    an audit without compressed bundles does not pay for the module."""
    if not _DECOMPRESSOR:
        import zstandard

        _DECOMPRESSOR.append(zstandard.ZstdDecompressor())
    return _DECOMPRESSOR[0]


def _zstd_error():
    import zstandard

    return zstandard.ZstdError


class _Inflater:
    """The decompressed bytes of one CCOB payload, read in order; counts and hashes what it yields."""

    def __init__(self, method: int, source: _Source, limit: int, verify_hash: bool = False):
        self.method, self.limit, self.total = method, limit, 0
        self.md5 = __import__("hashlib").md5() if verify_hash else None
        self._pending = b""
        if method == 1:
            self._reader = _zstd().stream_reader(source, read_size=_CHUNK)
        elif method == 0:
            self._source, self._zlib = source, zlib.decompressobj()
        else:
            raise BundleError(f"unknown compression method {method} (0 zlib and 1 zstd are known)")

    def _raw(self, size: int) -> bytes:
        try:
            if self.method == 1:
                return self._reader.read(size)
            while not self._zlib.eof:
                tail = self._zlib.unconsumed_tail
                data = tail or self._source.read(_CHUNK)
                if not data:
                    return self._zlib.flush()
                chunk = self._zlib.decompress(data, size)
                if chunk:
                    return chunk
                if tail and self._zlib.unconsumed_tail == tail:
                    raise BundleError("zlib stream makes no progress")
            return b""
        except (zlib.error, _zstd_error()) as exc:
            raise BundleError(f"corrupt {_METHODS[self.method]} stream: {exc}") from None

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream); never past ``limit``."""
        out = []
        want = min(size, self.limit - self.total)
        while want > 0:
            chunk = self._pending or self._raw(min(want, _CHUNK))
            self._pending = b""
            if not chunk:
                break
            if len(chunk) > want:
                chunk, self._pending = chunk[:want], chunk[want:]
            out.append(chunk)
            want -= len(chunk)
            self.total += len(chunk)
            if self.md5 is not None:
                self.md5.update(chunk)
        return b"".join(out)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) != size:
            raise BundleError(f"compressed bundle ends inside {what} (after {self.total} decompressed bytes)")
        return data

    def skip(self, size: int) -> None:
        scratch = None
        while size > 0:
            if self.method == 1 and not self._pending and self.md5 is None:
                # decompress into one reused buffer: a new 1 MB bytes object per chunk costs page faults
                scratch = scratch or memoryview(bytearray(_CHUNK))
                want = min(size, _CHUNK, self.limit - self.total)
                try:
                    got = self._reader.readinto(scratch[:want]) if want > 0 else 0
                except _zstd_error() as exc:
                    raise BundleError(f"corrupt zstd stream: {exc}") from None
                self.total += got
            else:
                got = len(self.read(min(size, _CHUNK)))
            if not got:
                raise BundleError(f"compressed bundle ends after {self.total} decompressed bytes, "
                                  "before the data its header lists")
            size -= got

    def drain(self) -> None:
        """Read to the end (at most one byte past the declared size: ``limit``)."""
        try:
            self.skip(self.limit - self.total)
        except BundleError as exc:
            if "ends after" not in str(exc):
                raise


def _stream_header(inflater: _Inflater, expected: int) -> tuple[list[BundleEntry], int]:
    head = inflater.exact(32, "the bundle header")
    if head[:24] != PLAIN_MAGIC:
        raise BundleError("compressed bundle does not decompress to an offload bundle (no magic)")
    (count,) = struct.unpack("<Q", head[24:32])
    if count > (expected - 32) // 24:
        raise BundleError(f"decompressed bundle claims {count} entries, more than its {expected} bytes can hold")
    pos, entries = 32, []
    for index in range(count):
        offset, size, id_len = struct.unpack("<QQQ", inflater.exact(24, f"entry {index}'s header"))
        if id_len > expected:
            raise BundleError(f"decompressed bundle: entry {index} id claims {id_len} bytes")
        entry_id = inflater.exact(id_len, f"entry {index}'s id").decode("ascii", "replace")
        pos += 24 + id_len
        if offset + size > expected:
            raise BundleError(f"decompressed bundle: entry {entry_id!r} at +{offset:#x} size {size} lies past "
                              f"the end of the {expected}-byte data")
        entries.append(BundleEntry(entry_id, offset, size))
    return entries, pos


def code_object_prefix(inflater: _Inflater, size: int, what: str) -> bytes:
    """A large code object reduced to what the audit reads: ELF header, program headers, PT_NOTE.

    The notes (the kernel metadata) are copied right after the program headers, whose
    PT_NOTE offsets are rewritten to match; the rest of the entry is decompressed into a
    scratch buffer and dropped. A 150 MB code object whose notes sit after its code (as
    assembler-built Tensile kernels have them) costs the size of its notes, no more.
    """
    from rocstack.audit.elf import ElfError, ElfFile  # fatbin stays importable without the ELF reader

    have = inflater.exact(min(size, 4096), what)
    try:
        elf = ElfFile(have, 0, None, what)
        table_end = elf.phoff + elf.phnum * _PHDR.size
        if table_end > size or table_end > MAX_PREFIX_BYTES or elf.phentsize not in (0, _PHDR.size):
            raise BundleError(f"{what}: program header table ends at {table_end}, past the {size}-byte entry")
        if table_end > len(have):
            have += inflater.exact(table_end - len(have), what)
        headers = list(_PHDR.iter_unpack(have[elf.phoff:table_end]))
    except ElfError:
        inflater.skip(size - len(have))
        return have  # not an ELF header: the caller reports it from these bytes
    notes = sorted((offset, filesz, index) for index, (typ, _f, offset, _v, _p, filesz, _m, _a) in enumerate(headers)
                   if typ == 4)  # PT_NOTE (linkers may emit one per alignment, over the same bytes)
    pos = len(have)
    last, last_start = have, 0  # the most recent bytes read, and where they start in the entry
    out = bytearray(have[:table_end] if notes else have)
    for offset, filesz, index in notes:
        if offset + filesz > size or filesz > MAX_PREFIX_BYTES:
            raise BundleError(f"{what}: PT_NOTE at {offset} (+{filesz}) lies past the {size}-byte entry "
                              f"or over the {MAX_PREFIX_BYTES}-byte read limit")
        if offset + filesz <= len(have):
            data = have[offset:offset + filesz]
        elif offset >= pos:
            inflater.skip(offset - pos)
            data = inflater.exact(filesz, what)
            last, last_start, pos = data, offset, offset + filesz
        elif offset >= last_start:  # overlaps the bytes just read: keep them, read the rest
            data = last[offset - last_start:] + inflater.exact(offset + filesz - pos, what) \
                if offset + filesz > pos else last[offset - last_start:offset - last_start + filesz]
            if offset + filesz > pos:
                last, last_start, pos = data, offset, offset + filesz
        else:
            raise BundleError(f"{what}: PT_NOTE segments out of order")
        new = len(out) + (-len(out) % 8)
        out += b"\0" * (new - len(out)) + data
        struct.pack_into("<Q", out, elf.phoff + index * _PHDR.size + 8, new)
    inflater.skip(size - pos)
    return bytes(out)


def _compressed_objects(bundle: Bundle, inflater: _Inflater, header_end: int, expected: int, digest: int):
    pos = header_end
    for entry in _device_entries(bundle.entries):
        if entry.offset < pos:
            raise BundleError(f"decompressed bundle: entry {entry.id!r} at +{entry.offset:#x} overlaps the header "
                              "or the entry before it")
        inflater.skip(entry.offset - pos)
        what = f"entry {entry.id!r}"
        data = inflater.exact(entry.size, what) if entry.size <= SPILL_BYTES else \
            code_object_prefix(inflater, entry.size, what)
        yield entry, data, 0, len(data)
        pos = entry.offset + entry.size
    inflater.drain()
    if inflater.total != expected:
        raise BundleError(f"compressed bundle decompressed to {inflater.total} bytes, header says {expected}")
    # the header's hash is the first 8 bytes of the MD5 of the uncompressed bundle, little-endian
    # (clang OffloadBundler: MD5Result::low()); clang checks it only in verbose mode, so a mismatch
    # means damage that loads anyway
    if inflater.md5 is not None:
        bundle.compression["hash_ok"] = int.from_bytes(inflater.md5.digest()[:8], "little") == digest


def parse_compressed(buf, start: int, end: int, max_size: int, verify_hash: bool = False) -> Bundle:
    """A CCOB bundle at ``buf[start:end]``: header and entry table read, code objects streamed on demand."""
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
        uncompressed = fields[3]
        nxt = _next_magic(buf, start + header.size, end, window=None)
        stored = (nxt if nxt >= 0 else end) - start
    else:
        total, uncompressed = fields[3], fields[4]
        if total < header.size or start + total > end:
            raise BundleError(
                f"compressed bundle v{version} at {start:#x} claims total size {total}, "
                f"but only {end - start} bytes remain"
            )
        stored = total
    if uncompressed > max_size:
        raise BundleError(f"compressed bundle claims {uncompressed} uncompressed bytes, over the {max_size}-byte limit")
    if uncompressed < 32:
        raise BundleError(f"compressed bundle claims {uncompressed} uncompressed bytes: too few for a bundle header")
    if method not in _METHODS:
        raise BundleError(f"unknown compression method {method} (0 zlib and 1 zstd are known)")
    # inflate at most one byte more than the header says: a lying header cannot make us inflate a bomb
    inflater = _Inflater(method, _Source(buf, start + header.size, start + stored), uncompressed + 1, verify_hash)
    entries, header_end = _stream_header(inflater, uncompressed)
    info = {"version": version, "method": _METHODS[method], "uncompressed_size": uncompressed, "hash_ok": None}
    bundle = Bundle(start, stored, info, entries)
    bundle._objects = _compressed_objects(bundle, inflater, header_end, uncompressed, fields[-1])
    return bundle
