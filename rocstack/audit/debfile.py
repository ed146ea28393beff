"""Debian packages (``.deb``) as audit inputs, read without dpkg and without installing.

Format (deb(5)): an ``ar`` archive (``!<arch>\\n``, then 60-byte member headers: name
16, mtime 12, uid 6, gid 6, mode 8, size 10, ``\\x60\\n``; data padded to even) holding
``debian-binary``, ``control.tar[.gz|.xz|.zst]`` and ``data.tar[.gz|.xz|.zst|.bz2]``.
The data tarball is streamed once; only members that can hold native or device code
(judged by their first bytes, not their names) are written out, within size limits,
into a private directory that keeps the package's layout, with its symlinks.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from dataclasses import dataclass, field

import zstandard

from rocstack.audit.declared import Declaration, from_control, parse_control
from rocstack.audit.magic import HEAD_BYTES, LD_SCRIPT, UNKNOWN, sniff, worth_sniffing

_AR_MAGIC = b"!<arch>\n"
_HEADER = 60
_CHUNK = 1 << 20


class DebError(Exception):
    """Not a readable Debian package."""


@dataclass
class Extracted:
    files: list[tuple[str, str]] = field(default_factory=list)  # (member path, host path)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (member path, problem)
    control: dict[str, str] = field(default_factory=dict)

    def declaration(self, host_files: set[str]) -> Declaration | None:
        declaration = from_control(self.control, "deb-control")
        if declaration is not None:
            declaration.files = host_files
        return declaration


class _Member(io.RawIOBase):
    """A read-only window on one ar member."""

    def __init__(self, handle, offset: int, size: int):
        self.handle, self.pos, self.end = handle, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.end - self.pos)
        if want <= 0:
            return 0
        self.handle.seek(self.pos)
        data = self.handle.read(want)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def _members(handle) -> dict[str, tuple[int, int]]:
    if handle.read(8) != _AR_MAGIC:
        raise DebError("not an ar archive (no !<arch> magic)")
    out = {}
    size_total = os.fstat(handle.fileno()).st_size
    pos = 8
    while pos + _HEADER <= size_total:
        handle.seek(pos)
        header = handle.read(_HEADER)
        if header[58:60] != b"`\n":
            raise DebError(f"corrupt ar member header at {pos}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"corrupt ar member size at {pos}") from None
        if pos + _HEADER + size > size_total:
            raise DebError(f"member {name} runs past the end of the {size_total}-byte file (truncated)")
        out[name] = (pos + _HEADER, size)
        pos += _HEADER + size + (size & 1)
    return out


def _decompressed(raw, name: str):
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)
    if name.endswith(".xz"):
        return lzma.LZMAFile(raw)
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw)
    if name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(raw)
    if name.endswith(".tar"):
        return raw
    raise DebError(f"unknown compression of {name}")


def _pick(members: dict, prefix: str) -> str:
    found = [n for n in members if n.startswith(prefix)]
    if not found:
        raise DebError(f"no {prefix}* member")
    return found[0]


def _inside(root: str, member: str) -> str | None:
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return os.path.join(root, *parts)


def extract(path: str, root: str, max_member: int, max_total: int) -> Extracted:
    """Control fields and the code-bearing files of ``path``, written under ``root``; DebError if unreadable."""
    out = Extracted()
    with open(path, "rb") as handle:
        members = _members(handle)
        control_name = _pick(members, "control.tar")
        with tarfile.open(fileobj=_decompressed(io.BufferedReader(_Member(handle, *members[control_name])),
                                                control_name), mode="r|") as tar:
            for info in tar:
                if info.isfile() and info.name.lstrip("./") == "control" and info.size < (1 << 20):
                    out.control = parse_control(tar.extractfile(info).read().decode("utf-8", "replace"))
        data_name = _pick(members, "data.tar")
        total = 0
        links = []
        with tarfile.open(fileobj=_decompressed(io.BufferedReader(_Member(handle, *members[data_name]), _CHUNK),
                                                data_name), mode="r|") as tar:
            for info in tar:
                target = _inside(root, info.name)
                if target is None:
                    continue
                if info.issym() or info.islnk():
                    links.append((info, target))
                    continue
                if not info.isfile() or not worth_sniffing(os.path.basename(target)):
                    continue
                stream = tar.extractfile(info)
                head = stream.read(HEAD_BYTES)
                if sniff(head) in (UNKNOWN, LD_SCRIPT) and not target.endswith((".dat", ".kdb")):
                    continue
                if info.size > max_member or total + info.size > max_total:
                    out.problems.append((info.name, f"member is {info.size} bytes (limits: {max_member} per member, "
                                                    f"{max_total} per package): not unpacked"))
                    continue
                total += info.size
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as dst:
                    dst.write(head)
                    while chunk := stream.read(_CHUNK):
                        dst.write(chunk)
                out.files.append((info.name, target))
        for info, target in links:
            _link(root, info, target, out)
    return out


def _link(root: str, info: tarfile.TarInfo, target: str, out: Extracted) -> None:
    """Recreate a symlink (or hardlink) when what it points to was extracted and stays inside ``root``."""
    if info.islnk():
        source = _inside(root, info.linkname)
    else:
        source = os.path.normpath(os.path.join(os.path.dirname(target), info.linkname)) \
            if not info.linkname.startswith("/") else _inside(root, info.linkname)
    if source is None or not source.startswith(root + os.sep) or not os.path.exists(source) or os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if info.islnk():
        os.link(source, target)
    else:
        os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
    out.files.append((info.name, target))
