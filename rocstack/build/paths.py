"""Where rocstack keeps its build state: $ROCSTACK_HOME (default ~/.rocstack)."""

from __future__ import annotations

import os
from pathlib import Path


def rocstack_home() -> Path:
    return Path(os.environ.get("ROCSTACK_HOME") or Path.home() / ".rocstack")


def logs_dir() -> Path:
    return rocstack_home() / "logs"
