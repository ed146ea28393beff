"""Run the real `rocstack` command in a subprocess (imported by tests as `cli_runner`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `rocstack` console command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(["rocstack", *args], capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=600)
