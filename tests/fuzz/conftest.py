"""The fuzz run's settings (environment variables) and its table in pytest's terminal summary."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS: list = []  # fuzz_runner.Result of every target fuzzed in this session


@pytest.fixture(scope="session")
def fuzz_results() -> list:
    return RESULTS


@pytest.fixture(scope="session")
def crash_root() -> Path:
    """Where crashes land: $ROCSTACK_FUZZ_CRASH_DIR, else a new temporary directory (kept after the run)."""
    chosen = os.environ.get("ROCSTACK_FUZZ_CRASH_DIR")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return Path(tempfile.mkdtemp(prefix="rocstack-fuzz-crashes-"))


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    from fuzz_report import table

    terminalreporter.section("rocstack fuzz: inputs per parser")
    for line in table(RESULTS):
        terminalreporter.write_line(line)
