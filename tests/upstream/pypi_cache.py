"""Real third-party files from PyPI for the upstream-component tests, cached.

Downloads land in ``$ROCSTACK_TEST_CACHE`` (default ``~/.cache/rocstack-tests``) and are
reused; a download that fails fails the test that needs it (the real path is the point).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cache_dir() -> Path:
    root = Path(os.environ.get("ROCSTACK_TEST_CACHE", Path.home() / ".cache" / "rocstack-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def pypi_download(requirement: str, pattern: str, binary: bool = True) -> Path:
    """The cached file of ``requirement`` (``pip download --no-deps``), matched by ``pattern``."""
    folder = cache_dir() / "pypi"
    folder.mkdir(exist_ok=True)
    found = sorted(folder.glob(pattern))
    if found:
        return found[-1]
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:", "--no-build-isolation"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-d", str(folder), requirement],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "FLASH_ATTENTION_TRITON_AMD_ENABLE": "TRUE", "FLASH_ATTENTION_SKIP_CUDA_BUILD": "TRUE",
             "FLASH_ATTENTION_FORCE_BUILD": "TRUE"},
    )
    found = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not found:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        pytest.fail(f"pip download {requirement} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return found[-1]
