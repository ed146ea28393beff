"""Filesystem helpers: nothing rocstack writes is ever left half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rocstack.errors import RocstackError


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write to a temp file beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise RocstackError(f"cannot write {path}: {exc.strerror}", "choose a writable location") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
