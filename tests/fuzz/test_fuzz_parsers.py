"""A bounded fuzz run of every parser, on mutated real artifacts (the seed corpus in corpus/).

Settings (environment): ``ROCSTACK_FUZZ_SECONDS`` (total, default 120, split evenly over the
targets), ``ROCSTACK_FUZZ_TARGETS`` (comma list, default all), ``ROCSTACK_FUZZ_SEED`` (base
seed, default 0: the same inputs every run), ``ROCSTACK_FUZZ_JOBS`` (workers, default 2 or the
CPU count if lower), ``ROCSTACK_FUZZ_TIMEOUT`` (seconds one input may take, default 10),
``ROCSTACK_FUZZ_MEMORY_MB`` (address space a worker may add, default 1024),
``ROCSTACK_FUZZ_CRASH_DIR`` (where crashes land, default a new temporary directory).
"""

from __future__ import annotations

import os

import pytest

from fuzz_runner import fuzz_target
from fuzz_targets import TARGETS

SECONDS = float(os.environ.get("ROCSTACK_FUZZ_SECONDS") or 120)
SELECTED = [name for name in (os.environ.get("ROCSTACK_FUZZ_TARGETS") or ",".join(TARGETS)).split(",") if name]
SEED = os.environ.get("ROCSTACK_FUZZ_SEED") or "0"
JOBS = int(os.environ.get("ROCSTACK_FUZZ_JOBS") or min(2, os.cpu_count() or 1))
TIMEOUT = float(os.environ.get("ROCSTACK_FUZZ_TIMEOUT") or 10)
MEMORY = int(os.environ.get("ROCSTACK_FUZZ_MEMORY_MB") or 1024) << 20


def test_settings_name_known_targets():
    unknown = sorted(set(SELECTED) - set(TARGETS))
    assert not unknown, f"ROCSTACK_FUZZ_TARGETS names unknown targets {unknown}; known: {', '.join(TARGETS)}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_parser_survives_mutated_inputs(name, crash_root, fuzz_results):
    if name not in SELECTED:
        pytest.skip(f"not in ROCSTACK_FUZZ_TARGETS={','.join(SELECTED)}")
    result = fuzz_target(TARGETS[name], seconds=SECONDS / len(SELECTED), jobs=JOBS, base_seed=SEED, timeout=TIMEOUT,
                         memory_bytes=MEMORY, crash_root=crash_root)
    fuzz_results.append(result)
    assert result.inputs > 0, f"{name}: no input ran in {result.seconds:.1f} s"
    if result.crash_count:
        shown = "\n".join(f"  {c.headline()}\n    saved in {c.directory} (replay: python3 tests/fuzz/fuzz_replay.py "
                          f"{c.directory})" for c in result.crashes)
        pytest.fail(f"{name}: {result.crash_count} of {result.inputs} inputs crashed the parser "
                    f"(ROCSTACK_FUZZ_SEED={SEED}):\n{shown}", pytrace=False)
