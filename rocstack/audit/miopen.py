"""MIOpen kernel databases (``*.kdb``): precompiled kernels in SQLite, one file per arch.

Layout (MIOpen ``kern_db.hpp``): table ``kern_db(id, kernel_name, kernel_args,
kernel_blob, kernel_hash, uncompressed_size)``; a blob is the code object itself, or
its bzip2 compression when ``uncompressed_size`` is non-zero (``miopen/bz2.hpp``). MIOpen
opens the database named for the device (``gfx90a6e.kdb``: arch plus CU count) and
falls back to compiling, so a kdb that lacks the device's arch costs minutes of JIT,
and one holding another arch's code objects fails to load them.

Read-only and bounded: the file is opened ``immutable`` (no journal, no locks), blobs
are fetched one row at a time and decompressed with a size cap.
"""

from __future__ import annotations

import bz2
import re
import zlib

from rocstack.audit.codeobject import CodeObject, parse_code_object
from rocstack.audit.devicecode import KERNEL_DATABASE, DeviceUnit
from rocstack.audit.elf import ELF_MAGIC, ElfError

# gfx90a68.kdb, gfx942130.kdb, gfx1030_36.kdb: the arch, then the CU count (hex or after "_")
NAME = re.compile(r"^(?P<arch>gfx(?:1[0-9]{3}|[6-9][0-9a-f]{2}))")
_COLUMNS = {"kernel_name", "kernel_args", "kernel_blob", "uncompressed_size"}
_MAX_BLOB = 256 << 20
_SHOWN = 5


class KdbError(Exception):
    """The file is not a MIOpen kernel database we can read."""


def _declared_size(value) -> int:
    """uncompressed_size as a number (a damaged row may hold text, a float or NULL there)."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"uncompressed_size {value!r} is not a number") from None


def _inflate(blob: bytes, size: int) -> bytes:
    if blob[:4] == ELF_MAGIC and not size:
        return blob
    if size < 0:  # size + 1 <= 0 would lift the decompressors' output cap
        raise ValueError(f"claims {size} uncompressed bytes")
    if size > _MAX_BLOB:
        raise ValueError(f"claims {size} uncompressed bytes, over the {_MAX_BLOB}-byte limit")
    if blob[:3] == b"BZh":
        out = bz2.BZ2Decompressor().decompress(blob, max_length=size + 1)
    elif blob[:1] == b"\x78":
        out = zlib.decompressobj().decompress(blob, size + 1)
    else:
        raise ValueError("neither a code object nor bzip2/zlib data")
    if size and len(out) != size:
        raise ValueError(f"decompressed to {len(out)} bytes, uncompressed_size says {size}")
    return out


def audit_kdb(path: str, label: str) -> tuple[list[CodeObject], DeviceUnit]:
    """The code objects of one kdb and its unit (targets found, problems per bad row); KdbError if unreadable."""
    import sqlite3  # only kernel databases need it
    from urllib.parse import quote

    uri = "file:" + quote(path) + "?mode=ro&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise KdbError(f"cannot open as SQLite: {exc}") from None
    # TEXT that is not UTF-8 (a damaged file) would raise UnicodeDecodeError, which is no sqlite3.Error
    db.text_factory = lambda value: value.decode("utf-8", "replace")
    objects: list[CodeObject] = []
    unit = DeviceUnit(KERNEL_DATABASE, label.rsplit("/", 1)[-1], [])
    bad: list[str] = []
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(kern_db)")}
        if not _COLUMNS <= columns:
            raise KdbError("no kern_db table with kernel_name, kernel_args, kernel_blob, uncompressed_size "
                           f"(found columns: {', '.join(sorted(columns)) or 'none'})")
        rows = db.execute("SELECT rowid, kernel_name, length(kernel_blob), uncompressed_size FROM kern_db ORDER BY rowid")
        for rowid, name, length, size in rows.fetchall():
            where = f"row {rowid} ({name})"
            if length is None or length > _MAX_BLOB:
                bad.append(f"{where}: blob of {length} bytes")
                continue
            found = db.execute("SELECT kernel_blob FROM kern_db WHERE rowid = ?", (rowid,)).fetchone()
            blob = found[0] if found else None
            if not isinstance(blob, bytes):  # gone on the second read, or TEXT/INTEGER in a damaged file
                bad.append(f"{where}: kernel_blob is {type(blob).__name__}, not a BLOB")
                continue
            try:
                data = _inflate(blob, _declared_size(size))
                obj = parse_code_object(data, 0, None, f"kdb {where}", f"{label} {where}")
            except (ValueError, OSError, EOFError, zlib.error, ElfError) as exc:
                bad.append(f"{where}: {exc}")
                continue
            objects.append(obj)
            if obj.target_id and obj.target_id not in unit.targets:
                unit.targets.append(obj.target_id)
    except sqlite3.Error as exc:
        raise KdbError(f"corrupt SQLite database: {exc}") from None
    except UnicodeDecodeError:  # sqlite3 decodes its error messages, which quote the (damaged) schema
        raise KdbError("corrupt SQLite database: its schema is not UTF-8 text") from None
    finally:
        db.close()
    if bad:
        more = f" (+{len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        unit.problems.append(f"{len(bad)} unreadable kernels: {'; '.join(bad[:_SHOWN])}{more}")
    named = NAME.match(label.rsplit("/", 1)[-1])
    if named and unit.targets and all(t.split(":")[0] != named["arch"] for t in unit.targets):
        unit.problems.append(f"named for {named['arch']} but holds {', '.join(unit.targets)} code objects")
    return objects, unit
