"""The fuzz harness itself: the corpus is real and parses clean, the mutator is deterministic and
uses every operation, and the runner catches each kind of failure (so the fuzz test can fail)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from fuzz_mutate import Seed
from fuzz_runner import fuzz_target, make_input
from fuzz_targets import CORPUS, TARGETS, Target

HERE = Path(__file__).resolve().parent


def test_corpus_is_small_and_complete():
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total < 400_000, f"the seed corpus is {total} bytes: keep it to a few hundred KB"
    big = [f"{p.relative_to(CORPUS)} ({p.stat().st_size})" for p in files if p.stat().st_size > 32_768]
    assert not big, f"seeds over 32 KiB: {big}"
    for target in TARGETS.values():
        assert target.seeds(), f"{target.name} has no seed in corpus/{target.corpus}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_seed_parses_clean(name, tmp_path):
    """Unmutated, every seed goes through every call of its target without even an accepted error:
    the fuzzing starts from inputs the parsers read all the way through."""
    for seed in TARGETS[name].seeds():
        assert TARGETS[name].run(seed.data, tmp_path, seed.name) == "parsed", seed.name


def test_inputs_are_reproducible_and_varied():
    target = TARGETS["bundle"]
    seeds = target.seeds()
    first = [make_input(target, seeds, "7", i)[1] for i in range(50)]
    again = [make_input(target, seeds, "7", i)[1] for i in range(50)]
    other = [make_input(target, seeds, "8", i)[1] for i in range(50)]
    assert first == again
    assert len(set(first)) > 45 and first != other


def test_mutator_uses_every_operation():
    seen = Counter()
    for name in ("elf", "kpack-archive", "statement", "kdb"):
        target = TARGETS[name]
        seeds = target.seeds()
        for index in range(1500):
            for step in make_input(target, seeds, "0", index)[2]:
                seen[step.split()[0]] += 1
                if "nested" in step:
                    seen["nested"] += 1
    expected = {"flip", "overwrite", "truncate", "extend", "delete", "duplicate", "splice", "insert", "field",
                "msgpack", "json", "nested"}
    assert expected <= set(seen), f"operations never used: {expected - set(seen)}"


def _misbehave(data: bytes, work: Path, seed: str) -> str:
    """A parser that fails in every way the runner must catch, picked by the input's first byte."""
    kind = data[0] % 8 if data else 7
    if kind == 0:
        raise KeyError("a bug")
    if kind == 1:
        time.sleep(3600)
    if kind == 2:
        return str(len(bytearray(16 << 30)))  # over the address-space cap: MemoryError
    if kind == 3:
        os.abort()
    return "parsed"


def test_runner_catches_crashes_hangs_memory_and_deaths(tmp_path):
    target = Target("misbehaving", (), _misbehave, ())
    seeds = [Seed(f"s{i}", bytes([i]) * 64) for i in range(8)]
    result = fuzz_target(target, seconds=8, jobs=2, timeout=1.0, memory_bytes=256 << 20, crash_root=tmp_path,
                         seeds=seeds)
    assert set(result.crash_kinds) == {"exception", "hang", "memory", "died"}, result.crash_kinds
    by_kind = {}
    for crash in result.crashes:
        by_kind.setdefault(crash.kind, crash)
    assert set(by_kind) == set(result.crash_kinds)  # the first of each kind is saved
    assert result.outcomes["parsed"] > 0  # the workers went on after each failure
    for crash in result.crashes:
        saved = json.loads((crash.directory / "crash.json").read_text())
        assert saved["index"] == crash.index and saved["mutation"] == crash.steps
        assert (crash.directory / "input.bin").read_bytes() == make_input(target, seeds, "0", crash.index)[1]
    assert "_misbehave" in by_kind["hang"].detail  # the stack of the hung worker
    assert "_misbehave" in by_kind["died"].detail and "SIGABRT" in by_kind["died"].detail
    assert "KeyError: 'a bug'" in by_kind["exception"].detail and "MemoryError" in by_kind["memory"].detail


@pytest.mark.slow
def test_corpus_regenerates_byte_for_byte():
    """make_corpus.py --check: the committed seeds are what the real tools make today."""
    missing = [t for t in ("clang-19", "ld.lld-19", "llvm-readelf-19", "clang-offload-bundler-19", "gcc", "g++",
                           "hipcc", "dpkg-deb") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (CI installs them)")
    done = subprocess.run([sys.executable, str(HERE / "make_corpus.py"), "--check"], capture_output=True, text=True,
                          timeout=1800)
    if "Skipped" in done.stderr:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
