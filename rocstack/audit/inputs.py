"""What to audit: files named, libraries found in directories, and members of wheels.

Wheels are read without installing: only their shared libraries and code
objects are unpacked, into a private temporary directory keeping the wheel's
layout (so ``$ORIGIN`` works), with every member's declared size checked against
limits before a byte is inflated: a zip bomb is a finding, not a full disk.
Directories are walked without following directory symlinks, so a symlink
loop cannot make the walk endless; a file symlink that loops is reported.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field

from rocstack.audit.elf import ELF_MAGIC
from rocstack.errors import RocstackError

_LIBRARY_GLOBS = ("*.so", "*.so.*", "*.co", "*.hsaco")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class AuditLimits:
    max_member_bytes: int = 4 << 30  # one file inside a wheel
    max_wheel_bytes: int = 16 << 30  # everything unpacked from one wheel
    max_bundle_bytes: int = 2 << 30  # one decompressed offload bundle


@dataclass
class InputFile:
    path: str  # host path to open
    label: str  # name in the report (``pkg.whl!pkg/lib.so`` for wheel members)
    rel: str  # path relative to its install root, for policy globs


@dataclass
class InputProblem:
    label: str
    message: str
    hint: str
    io: bool = False  # could not be read at all (exit code 2) vs malformed


@dataclass
class Inputs:
    files: list[InputFile] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)  # unpacked wheel roots (they act as site-packages)
    _temp: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self._temp:
            shutil.rmtree(path, ignore_errors=True)
        self._temp.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def is_library_name(name: str) -> bool:
    base = os.path.basename(name)
    return any(fnmatch.fnmatch(base, g) for g in _LIBRARY_GLOBS)


def _has_elf_magic(path: str) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return True  # a FIFO or device is never opened (it could block): _add reports it
        with open(path, "rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return True  # let the audit open it and report why it cannot


def collect_inputs(paths, limits: AuditLimits) -> Inputs:
    inputs = Inputs()
    seen: set[str] = set()
    try:
        for raw in paths:
            path = os.fspath(raw)
            if not os.path.lexists(path):
                raise RocstackError(f"audit input {path} does not exist", "check the path")
            if os.path.isdir(path):
                _walk(path, inputs, seen, limits)
            elif path.endswith(".whl"):
                _unpack_wheel(path, inputs, limits)
            else:
                _add(inputs, seen, path, path, path)
    except BaseException:
        inputs.cleanup()
        raise
    return inputs


def _add(inputs: Inputs, seen: set[str], path: str, label: str, rel: str) -> None:
    key = os.path.realpath(path)
    if key in seen:
        return  # libfoo.so -> libfoo.so.1, or a path named twice: audit (or report) it once
    seen.add(key)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            inputs.problems.append(InputProblem(label, "symlink loop: the path never reaches a file",
                                                "remove or fix the symlink"))
        else:
            inputs.problems.append(InputProblem(label, f"cannot read: {exc.strerror}", "check the path and permissions",
                                                io=True))
        return
    if not stat.S_ISREG(mode):
        inputs.problems.append(InputProblem(label, "not a regular file (FIFO, device or socket): not opened",
                                            "audit regular files, directories or wheels"))
        return
    inputs.files.append(InputFile(path, label, rel))


def _walk(top: str, inputs: Inputs, seen: set[str], limits: AuditLimits) -> None:
    def on_error(exc: OSError) -> None:
        inputs.problems.append(InputProblem(exc.filename or top, f"cannot list directory: {exc.strerror}",
                                            "check permissions", io=True))

    for folder, dirs, names in os.walk(top, onerror=on_error, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, top)
            if name.endswith(".whl"):
                _unpack_wheel(path, inputs, limits)
            elif is_library_name(name) and _has_elf_magic(path):
                _add(inputs, seen, path, path, rel)


def _unpack_wheel(wheel: str, inputs: Inputs, limits: AuditLimits) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        inputs.problems.append(InputProblem(wheel, f"not a readable wheel (zip): {exc}",
                                            "re-download or rebuild the wheel"))
        return
    root = tempfile.mkdtemp(prefix="rocstack-audit-wheel-")
    inputs._temp.append(root)
    inputs.roots.append(root)
    total = 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or not is_library_name(name):
                continue
            label = f"{wheel}!{name}"
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or "\\" in name:
                inputs.problems.append(InputProblem(label, "unsafe member path (absolute or with '..')",
                                                    "rebuild the wheel with relative member names"))
                continue
            if info.file_size > limits.max_member_bytes or total + info.file_size > limits.max_wheel_bytes:
                inputs.problems.append(InputProblem(
                    label, f"member inflates to {info.file_size} bytes from {info.compress_size} "
                           f"(limits: {limits.max_member_bytes} per member, {limits.max_wheel_bytes} per wheel): "
                           "not unpacked (zip bomb?)",
                    "raise the audit limits if this library is really that large"))
                continue
            total += info.file_size
            target = os.path.join(root, *parts)
            problem = _extract(archive, info, target)
            if problem:
                inputs.problems.append(InputProblem(label, problem, "re-download or rebuild the wheel"))
                continue
            inputs.files.append(InputFile(target, label, name))


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: str) -> str | None:
    """Stream one member to ``target``; zipfile stops at the declared size and checks the CRC."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        with archive.open(info) as src, open(target, "wb") as dst:
            written = 0
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    return "member inflates past its declared size"
                dst.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return f"corrupt member: {exc}"
    except Exception as exc:  # zlib/bz2/lzma errors surface as their own types
        return f"corrupt member: {type(exc).__name__}: {exc}"
    return None
