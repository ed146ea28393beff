"""An image's filesystem, read through the engine without running anything from it.

A container of the image is *created* (never started: its entrypoint is a path that
does not exist) and exported: the engine streams the merged filesystem as one tar,
with every layer's whiteouts already applied. The stream is read once, in order, and
only what the static checks need is written to a private temporary directory:

- shared libraries (``*.so``, ``*.so.N``) anywhere: the audited files and their
  dependency closure (the loader may find a dependency in any directory);
- device code whatever its name (AMDGPU code objects, offload bundles, compressed
  bundles, kpack archives), MIOpen ``.kdb`` databases, Tensile ``library/*.dat``;
- the loader's configuration, dpkg's status and file lists, Python distribution
  metadata, ROCm version files, TunableOp tables, the interpreters (``bin/python*``);
- every symlink (a few bytes each; the loader and Sysroot follow them).

Headers, static archives, sources, documentation and everything else stream past:
disk use is bounded by the libraries, memory by one read buffer. Nothing is written
outside the temporary root: parents are created as real directories and a name whose
parent is a symlink is never written through it. Never a device node, FIFO or socket.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.contracts import LABEL_VALIDATION_CONTAINER
from rocstack.errors import EngineError, RocstackError

HEAD_BYTES = 64
CHUNK = 1 << 20
ELF_MAGIC = b"\x7fELF"
DEVICE_MAGICS = (b"__CLANG_OFFLOAD_BUNDLE__", b"CCOB", b"KPAK")
SQLITE_MAGIC = b"SQLite format 3\x00"
EM_AMDGPU = 224
NEVER_STARTED = "/rocstack-export-only-never-started"

# Trees that hold nothing an audit reads (kernel pseudo-filesystems, caches, docs, headers).
SKIPPED_TREES = ("proc/", "sys/", "dev/", "run/", "tmp/", "var/tmp/", "var/cache/", "var/log/", "usr/share/doc/",
                 "usr/share/man/", "usr/share/locale/", "usr/share/i18n/", "usr/src/", "root/.cache/")
_LIBRARY = re.compile(r"\.so(\.\d+)*$")
# Small text files read by name (fnmatch over the path inside the image, without the leading /).
METADATA_PATTERNS = (
    "etc/ld.so.conf", "etc/ld.so.conf.d/*", "etc/os-release", "usr/lib/os-release",
    "var/lib/dpkg/status", "var/lib/dpkg/info/*.list",
    "*.dist-info/METADATA", "*.dist-info/RECORD", "*.dist-info/top_level.txt", "*.egg-info/PKG-INFO",
    "opt/rocm*/.info/version*", "*/rocm-core/rocm_version.h", "*/include/rocm_version.h",
    "*/torch/version.py", "*tunableop_results*.csv", "app/versions.txt", "opt/rocstack/manifest.json",
    "*/rocstack_kernels/*manifest.json", "opt/rocstack/kernels/manifest.json",
)
METADATA_MAX_BYTES = 64 << 20  # a RECORD or dpkg status larger than this is not metadata


def _skipped(name: str) -> bool:
    return name.startswith(SKIPPED_TREES) or "/__pycache__/" in name


def is_metadata(name: str, extra: tuple[str, ...] = ()) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in (*METADATA_PATTERNS, *extra))


def is_wanted_binary(name: str, head: bytes) -> bool:
    """Whether a regular file's first bytes make it something the audit reads."""
    base = name.rsplit("/", 1)[-1]
    if head.startswith(ELF_MAGIC):
        if len(head) >= 20 and int.from_bytes(head[18:20], "little") == EM_AMDGPU:
            return True  # a code object, whatever its name
        return bool(_LIBRARY.search(base)) or bool(re.search(r"/bin/python[0-9.]*$", "/" + name))
    if head.startswith(DEVICE_MAGICS):
        return True
    if head.startswith(SQLITE_MAGIC):
        return base.endswith(".kdb")
    return base.endswith(".dat") and "/library/" in "/" + name  # Tensile's msgpack indexes


@dataclass
class ExtractStats:
    streamed_bytes: int = 0
    entries: int = 0
    files: int = 0
    file_bytes: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    unresolved_hardlinks: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # names that would have escaped the root

    def to_json(self) -> dict:
        return {"streamed_bytes": self.streamed_bytes, "entries": self.entries, "files": self.files,
                "file_bytes": self.file_bytes, "symlinks": self.symlinks, "hardlinks": self.hardlinks,
                "unresolved_hardlinks": self.unresolved_hardlinks[:20], "refused": self.refused[:20]}


class StreamBroken(Exception):
    """The engine's stream ended with an error (not a local I/O problem)."""


class _CountingStream(io.RawIOBase):
    """A file object over the engine's chunk iterator, counting what was read."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:  # noqa: BLE001 - the SDK's and urllib3's stream errors vary by version
                raise StreamBroken(f"{type(exc).__name__}: {exc}") from None
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self.read_bytes += size
        return size


def _safe_parent(root: Path, name: str) -> Path | None:
    """The real directory under ``root`` for ``name``'s parent, made as needed; None if a symlink is in the way."""
    parts = [p for p in name.split("/")[:-1] if p not in ("", ".")]
    if ".." in parts:
        return None
    current = root
    for part in parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(mode):
            return None
    return current


def _leaf(name: str) -> str | None:
    leaf = name.rstrip("/").rsplit("/", 1)[-1]
    return None if leaf in ("", ".", "..") else leaf


class _Extractor:
    def __init__(self, root: Path, extra_metadata: tuple[str, ...]):
        self.root, self.extra = root, extra_metadata
        self.stats = ExtractStats()
        self.written: set[str] = set()

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name.lstrip("./") if member.name.startswith("./") else member.name.lstrip("/")
        self.stats.entries += 1
        if not name or _skipped(name + ("/" if member.isdir() else "")):
            return
        if member.issym():
            self._place(name, lambda target: os.symlink(member.linkname, target))
            self.stats.symlinks += 1
        elif member.islnk():
            self._hardlink(name, member.linkname.lstrip("./") if member.linkname.startswith("./") else member.linkname.lstrip("/"))
        elif member.isreg():
            self._regular(tar, member, name)

    def _place(self, name: str, make) -> bool:
        parent, leaf = _safe_parent(self.root, name), _leaf(name)
        if parent is None or leaf is None:
            self.stats.refused.append(name)
            return False
        target = parent / leaf
        if os.path.lexists(target):
            return False  # an export lists each path once; a repeat never overwrites
        make(target)
        return True

    def _hardlink(self, name: str, target: str) -> None:
        if target in self.written and self._place(name, lambda path: os.link(self.root / target, path)):
            self.written.add(name)
            self.stats.hardlinks += 1
        elif target not in self.written and (is_metadata(name, self.extra) or _LIBRARY.search(name)):
            self.stats.unresolved_hardlinks.append(f"{name} -> {target}")

    def _regular(self, tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> None:
        metadata = member.size <= METADATA_MAX_BYTES and is_metadata(name, self.extra)
        source = None
        head = b""
        if not metadata:
            if member.size < 4:
                return
            source = tar.extractfile(member)
            head = source.read(HEAD_BYTES)
            if not is_wanted_binary(name, head):
                return
        source = source or tar.extractfile(member)

        def write(path: Path) -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(head)
                shutil.copyfileobj(source, out, CHUNK)

        if self._place(name, write):
            self.written.add(name)
            self.stats.files += 1
            self.stats.file_bytes += member.size


def extract_stream(chunks, root: Path, extra_metadata: tuple[str, ...] = ()) -> ExtractStats:
    """Read a filesystem tar stream once; write what the checks need under ``root`` (pure of the engine)."""
    stream = _CountingStream(chunks)
    extractor = _Extractor(Path(root), extra_metadata)
    last = "(start of the stream)"
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream, CHUNK), mode="r|") as tar:
            for member in tar:
                last = member.name
                extractor.member(tar, member)
    except (tarfile.TarError, EOFError, StreamBroken) as exc:
        raise RocstackError(
            f"the image's filesystem stream is corrupt after {stream.read_bytes >> 20} MiB (at {last}): {exc}",
            "a layer of the image is damaged in the engine: remove the image, pull or rebuild it, validate again",
        ) from None
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise RocstackError(f"no space left under {root} while extracting the image's libraries",
                                "point TMPDIR at a disk with room for the image's libraries") from None
        raise RocstackError(f"cannot extract the image's libraries under {root}: {exc.strerror or exc}",
                            "point TMPDIR at a writable disk") from None
    extractor.stats.streamed_bytes = stream.read_bytes
    return extractor.stats


@dataclass
class ImageTree:
    """The extracted subset of an image's filesystem; ``root`` stands for the image's ``/``."""

    root: Path
    stats: ExtractStats

    def host_path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def inside(self, host_path: str | os.PathLike) -> str:
        text = os.fspath(host_path)
        prefix = os.fspath(self.root)
        return "/" + os.path.relpath(text, prefix) if text.startswith(prefix) else text

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _engine_failure(reference: str, exc: Exception) -> RocstackError:
    text = getattr(exc, "explanation", None) or str(exc)
    return EngineError(f"the engine could not export the filesystem of {reference}: {' '.join(str(text).split())[:300]}",
                       "a layer of the image is damaged or missing in the engine: remove the image, pull or rebuild it")


def export_image(client, image_id: str, reference: str, extra_metadata: tuple[str, ...] = (),
                 workdir: str | None = None) -> ImageTree:
    """Extract what the static checks need from ``image_id``; the throwaway container is always removed."""
    import docker.errors
    import requests

    root = Path(tempfile.mkdtemp(prefix="rocstack-image-", dir=workdir))
    container = None
    try:
        try:
            container = client.containers.create(image_id, entrypoint=[NEVER_STARTED], command=[],
                                                 network_mode="none", labels={LABEL_VALIDATION_CONTAINER: "1"})
            stats = extract_stream(container.export(chunk_size=CHUNK), root, extra_metadata)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise _engine_failure(reference, exc) from None
        return ImageTree(root, stats)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        from rocstack.validate.container import remove_quietly

        remove_quietly(container)
