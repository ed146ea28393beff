"""The one way rocstack writes files: nothing it writes is ever left half-written.

``write_atomic`` writes a file beside its destination and renames it into place;
``write_tree_atomic`` does the same for a directory of files (a report set): the
new set replaces the old one whole, or the old one stays. Every failure is one
``RocstackError`` naming the path, never an OSError traceback.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rocstack.errors import RocstackError


def _cannot(path: Path, exc: OSError, fix: str = "choose a writable location") -> RocstackError:
    return RocstackError(f"cannot write {path}: {exc.strerror or exc}", fix)


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write to a temp file beside ``path`` and rename it into place."""
    path = Path(path)
    if path.is_dir():
        raise RocstackError(f"cannot write {path}: it is a directory", "pass a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise _cannot(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def append_text(path: str | os.PathLike, text: str) -> Path:
    """Append to a file another program owns and reads as it grows (a CI step summary): one write call."""
    path = Path(path)
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise _cannot(path, exc, "check the path the CI runner set") from None
    return path


def check_writable(path: Path, flag: str) -> Path:
    """Refuse an output path that cannot be written, before the work that would fill it."""
    path = Path(path)
    if path.is_dir():
        raise RocstackError(f"{flag} {path} is a directory", f"pass a file path for {flag}")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise RocstackError(f"cannot write {flag} {path}: {probe} is not writable", f"choose a writable {flag} location")
    return path


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on a directory (its own descriptor: no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_tree_atomic(directory: Path, files: dict[str, str | bytes], dir_mode: int = 0o755) -> Path:
    """Make ``directory`` hold exactly ``files`` (name -> content), replacing what it held as a whole.

    The files are written into a temporary sibling which then takes the directory's place by
    renames; two processes writing the same directory take turns (a lock on the parent
    directory), so each leaves a complete set and neither fails.
    """
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        raise RocstackError(f"{directory} is a file, not a directory", "pass a directory path")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    except OSError as exc:
        raise _cannot(directory, exc, "pass a writable directory") from None
    try:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (staging / name).parent.mkdir(parents=True, exist_ok=True)  # "a/report.json": a set of sets
            (staging / name).write_bytes(data)
        os.chmod(staging, dir_mode)
        with _locked(directory.parent):
            _swap_in(staging, directory)
    except OSError as exc:
        raise _cannot(directory, exc, "pass a writable directory") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _swap_in(staging: Path, directory: Path) -> None:
    old = None
    if directory.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
        os.rename(directory, old / "previous")
    try:
        os.rename(staging, directory)
    except BaseException:
        if old is not None and not directory.exists():
            os.rename(old / "previous", directory)  # put the previous set back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
