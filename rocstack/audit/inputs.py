"""What to audit: files named, files found in directories, members of wheels and Debian packages.

Files are identified by content (:mod:`rocstack.audit.magic`), not name: host ELF
libraries (library-named: executables found in a walk are not audited), AMDGPU code
objects, offload bundles and kpack archives whatever their extension, MIOpen ``.kdb``
databases and Tensile ``.dat`` files. A file named like a library that is not ELF is a finding
(text linker scripts excepted).

Wheels and ``.deb`` files are read without installing: only the members that can
hold code are unpacked, into a private temporary directory keeping the archive's
layout (so ``$ORIGIN`` works), with every member's declared size checked against
limits before a byte is inflated: a zip bomb is a finding, not a full disk.
Directories are walked without following directory symlinks, so a symlink loop
cannot make the walk endless; a file symlink that loops is reported.

Every input is a *component* (the coverage matrix judges an arch per component):
each path argument, or one name for everything when the caller passes one, or the
name the caller gives each path.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Mapping

from rocstack.audit import magic
from rocstack.errors import RocstackError

_LIBRARY_NAME = re.compile(r"\.so(?:\.[0-9][0-9A-Za-z_]*)*$")  # libfoo.so, libfoo.so.5.2 (not libfoo.so.c)
_CHUNK = 1 << 20
TENSILE_DATA, KERNEL_DB = "tensile-data", "kernel-db"
# names that promise device code or a kernel database: one that cannot be read is a finding
_CODE_SUFFIXES = (".co", ".hsaco", ".dat", ".kdb", ".kpack")


@dataclass(frozen=True)
class AuditLimits:
    max_member_bytes: int = 4 << 30  # one file inside a wheel or .deb
    max_wheel_bytes: int = 16 << 30  # everything unpacked from one wheel or .deb
    max_bundle_bytes: int = 4 << 30  # one decompressed offload bundle
    verify_bundle_hashes: bool = False  # check each CCOB's MD5 (as costly as decompressing again)


@dataclass
class InputFile:
    path: str  # host path to open
    label: str  # name in the report (``pkg.whl!pkg/lib.so`` for archive members)
    rel: str  # path relative to its install root, for policy globs and kernel-set keys
    kind: str = magic.ELF_HOST  # what magic.sniff says it is, or TENSILE_DATA / KERNEL_DB
    component: str = ""


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
    components: list[str] = field(default_factory=list)
    declarations: list = field(default_factory=list)  # declared.Declaration of wheels, .debs, dist-infos
    _temp: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        import shutil

        for path in self._temp:
            shutil.rmtree(path, ignore_errors=True)
        self._temp.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def is_library_name(name: str) -> bool:
    return _LIBRARY_NAME.search(os.path.basename(name)) is not None


def classify(name: str, kind: str) -> str | None:
    """The input kind to audit a file as, or None to leave it out; "not-elf" for a non-ELF library name."""
    library = is_library_name(name)
    if kind in (magic.ELF_AMDGPU, magic.BUNDLE, magic.COMPRESSED_BUNDLE, magic.KPACK):
        return kind
    if kind in (magic.ELF_HOST, magic.ELF_OTHER):
        return kind if library else None
    if kind == magic.SQLITE and name.endswith(".kdb"):
        return KERNEL_DB
    if name.endswith(".dat") and kind == magic.UNKNOWN:
        return TENSILE_DATA
    if library and kind not in (magic.LD_SCRIPT,):
        return "not-elf"
    return None


def collect_inputs(paths, limits: AuditLimits, component: str | Mapping[str, str] | None = None) -> Inputs:
    inputs = Inputs()
    seen: set[str] = set()
    try:
        for raw in paths:
            path = os.fspath(raw)
            if not os.path.lexists(path):
                raise RocstackError(f"audit input {path} does not exist", "check the path")
            name = (component.get(path) or path) if isinstance(component, Mapping) else (component or path)
            if name not in inputs.components:
                inputs.components.append(name)
            if os.path.isdir(path):
                _walk(path, inputs, seen, limits, name)
            elif path.endswith(".whl"):
                _unpack_wheel(path, inputs, limits, name)
            elif path.endswith(".deb"):
                _unpack_deb(path, inputs, limits, name)
            else:
                _add(inputs, seen, path, path, path, name, named=True)
    except BaseException:
        inputs.cleanup()
        raise
    return inputs


def _sniff(inputs: Inputs, path: str, label: str) -> str | None:
    try:
        return magic.sniff_path(path)
    except OSError as exc:
        inputs.problems.append(InputProblem(label, f"cannot read: {exc.strerror or exc}",
                                            "check the path and permissions", io=True))
        return None


def _add(inputs: Inputs, seen: set[str], path: str, label: str, rel: str, component: str, named: bool = False) -> None:
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
    kind = _sniff(inputs, path, label)
    if kind is None:
        return
    audit_as = classify(os.path.basename(path), kind)
    if named and audit_as in (None, "not-elf"):
        audit_as = kind  # a file named on the command line is audited whatever it is: the ELF reader says why not
    if audit_as is None:
        return
    if audit_as == "not-elf":
        inputs.problems.append(InputProblem(label, f"named like a shared library but not an ELF file ({kind} content)",
                                            "a loader fails on it: rebuild or re-download it"))
        return
    inputs.files.append(InputFile(path, label, rel, audit_as, component))


def _walk(top: str, inputs: Inputs, seen: set[str], limits: AuditLimits, component: str) -> None:
    def on_error(exc: OSError) -> None:
        inputs.problems.append(InputProblem(exc.filename or top, f"cannot list directory: {exc.strerror}",
                                            "check permissions", io=True))

    for folder, dirs, names in os.walk(top, onerror=on_error, followlinks=False):
        dirs.sort()
        if folder.endswith(".dist-info") and "METADATA" in names:
            _dist_info(folder, inputs)
        for name in sorted(names):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, top)
            if name.endswith(".whl"):
                _unpack_wheel(path, inputs, limits, component)
            elif name.endswith(".deb"):
                _unpack_deb(path, inputs, limits, component)
            elif is_library_name(name) or name.endswith(_CODE_SUFFIXES):
                _add(inputs, seen, path, path, rel, component)  # reported even when it cannot be read
            elif magic.worth_sniffing(name) and os.path.isfile(path):
                _add(inputs, seen, path, path, rel, component)


def _dist_info(folder: str, inputs: Inputs) -> None:
    """An installed wheel's declaration, with its files from RECORD (paths relative to site-packages)."""
    from rocstack.audit.declared import from_wheel_metadata

    try:
        with open(os.path.join(folder, "METADATA"), encoding="utf-8", errors="replace") as handle:
            declaration = from_wheel_metadata(handle.read(), "wheel-metadata (installed)")
        if declaration is None:
            return
        base = os.path.dirname(folder)
        with open(os.path.join(folder, "RECORD"), encoding="utf-8", errors="replace") as handle:
            declaration.files = {os.path.realpath(os.path.join(base, line.split(",", 1)[0]))
                                 for line in handle if line.strip()}
    except OSError:
        return
    inputs.declarations.append(declaration)


def _unpack_wheel(wheel: str, inputs: Inputs, limits: AuditLimits, component: str) -> None:
    import tempfile
    import zipfile  # only wheels need it: keep the audit's start-up short

    from rocstack.audit.declared import from_wheel_metadata

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
    declaration = None
    extracted: set[str] = set()
    with archive:
        for info in archive.infolist():
            name = info.filename
            if name.endswith(".dist-info/METADATA") and name.count("/") == 1 and info.file_size < (1 << 20):
                declaration = from_wheel_metadata(archive.read(info).decode("utf-8", "replace"))
                continue
            if info.is_dir() or not (is_library_name(name) or magic.worth_sniffing(os.path.basename(name))):
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
            try:
                with archive.open(info) as src:
                    kind = magic.sniff(src.read(magic.HEAD_BYTES))
            except Exception as exc:  # noqa: BLE001 - zlib/bz2/lzma/zip errors all mean a corrupt member
                inputs.problems.append(InputProblem(label, f"corrupt member: {type(exc).__name__}: {exc}",
                                                    "re-download or rebuild the wheel"))
                continue
            audit_as = classify(name, kind)
            if audit_as is None:
                continue
            if audit_as == "not-elf":
                inputs.problems.append(InputProblem(label, f"named like a shared library but not an ELF file "
                                                           f"({kind} content)", "rebuild the wheel"))
                continue
            total += info.file_size
            target = os.path.join(root, *parts)
            problem = _extract(archive, info, target)
            if problem:
                inputs.problems.append(InputProblem(label, problem, "re-download or rebuild the wheel"))
                continue
            extracted.add(os.path.realpath(target))
            inputs.files.append(InputFile(target, label, name, audit_as, component))
    if declaration is not None:
        declaration.files = extracted
        inputs.declarations.append(declaration)


def _extract(archive, info, target: str) -> str | None:
    """Stream one member to ``target``; zipfile stops at the declared size and checks the CRC."""
    import zipfile

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


def _unpack_deb(deb: str, inputs: Inputs, limits: AuditLimits, component: str) -> None:
    import tempfile

    from rocstack.audit.debfile import DebError, extract  # tar/xz/bz2 readers: only for .deb inputs

    root = tempfile.mkdtemp(prefix="rocstack-audit-deb-")
    inputs._temp.append(root)
    try:
        extracted = extract(deb, root, limits.max_member_bytes, limits.max_wheel_bytes)
    except (DebError, OSError, EOFError, ValueError) as exc:
        inputs.problems.append(InputProblem(deb, f"not a readable Debian package: {exc}",
                                            "re-download the package"))
        return
    except Exception as exc:  # noqa: BLE001 - lzma/zstd/gzip/tar errors all mean a corrupt package
        inputs.problems.append(InputProblem(deb, f"corrupt Debian package: {type(exc).__name__}: {exc}",
                                            "re-download the package"))
        return
    for member, problem in extracted.problems:
        inputs.problems.append(InputProblem(f"{deb}!{member}", problem, "raise the audit limits"))
    seen: set[str] = set()
    for member, target in extracted.files:
        rel = member.lstrip("./")
        _add(inputs, seen, target, f"{deb}!{rel}", rel, component)
    declaration = extracted.declaration({os.path.realpath(t) for _m, t in extracted.files})
    if declaration is not None:
        inputs.declarations.append(declaration)
