"""Correctness: the kernel package's tests and each component's selected tests, through pytest.

With a GPU the tests run on it. Without one they run through Triton's interpreter
(``TRITON_INTERPRET=1``, what runs on a CPU) and the GPU run is reported as skipped with
the reason. Upstream GPU suites (``validation.pytest_gpu``) run only on a GPU. Every run
gets the component's ``validation.env``. Results come from pytest's JUnit XML, so counts and messages are exact.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from rocstack_validation.results import Outcome, skip

KERNEL_TESTS = "kernels/tests"
TIMEOUT_ENV = "ROCSTACK_VALIDATE_PYTEST_TIMEOUT"
MAX_LISTED = 8


@dataclass
class PytestRun:
    returncode: int
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    output_tail: str = ""

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _first_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""


def parse_junit(path: Path, returncode: int, output_tail: str = "") -> PytestRun:
    run = PytestRun(returncode, output_tail=output_tail)
    if not path.exists():
        return run
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skipped = case.find("skipped")
        if bad is not None:
            run.failed.append(f"{test}: {_first_line(bad.get('message')) or _first_line(bad.text)}")
        elif skipped is not None:
            reason = _first_line(skipped.get("message")) or "no reason given"
            run.skipped[reason] = run.skipped.get(reason, 0) + 1
        else:
            run.passed += 1
    return run


def run_pytest(args: list[str], cwd: Path, interpreter: bool, env: dict[str, str] | None = None) -> PytestRun:
    env = dict(os.environ if env is None else env)
    if interpreter:
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    timeout = float(os.environ.get(TIMEOUT_ENV, "1800"))
    with tempfile.TemporaryDirectory(prefix="rocstack-pytest-") as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stdout or b"")[-2000:]
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return PytestRun(-1, failed=[f"pytest timed out after {timeout:.0f} s (raise {TIMEOUT_ENV})"], output_tail=tail)
        tail = (proc.stdout + proc.stderr)[-2000:]
        return parse_junit(junit, proc.returncode, tail)


def judge(run: PytestRun, what: str) -> Outcome:
    """pass needs at least one passing test and no failure; all-skipped is a skip, never a pass."""
    details = {"passed": run.passed, "failed": len(run.failed), "skipped": run.skipped_total,
               "skip_reasons": run.skipped, "failures": run.failed[:MAX_LISTED]}
    reasons = "; ".join(f"{n}x {r}" for r, n in list(run.skipped.items())[:MAX_LISTED])
    if run.failed:
        more = f" (+{len(run.failed) - MAX_LISTED} more)" if len(run.failed) > MAX_LISTED else ""
        listed = "; ".join(run.failed[:MAX_LISTED])
        return Outcome("fail", f"{what}: {len(run.failed)} failed, {run.passed} passed: {listed}{more}", details)
    if run.returncode == 5:
        return Outcome("error", f"{what}: pytest collected no tests (check the selection)", details)
    if run.returncode not in (0, 1):
        return Outcome("error", f"{what}: pytest exited {run.returncode}: {_first_line(run.output_tail[-600:])}", details | {"output_tail": run.output_tail})
    if run.passed == 0:
        return Outcome("skip", f"{what}: every test skipped: {reasons or 'no reason given'}", details)
    extra = f", {run.skipped_total} skipped ({reasons})" if run.skipped_total else ""
    return Outcome("pass", f"{what}: {run.passed} passed{extra}", details)


def _test_path(args: list[str]) -> str | None:
    """The first test file or directory a selection names (option values such as ``-k expr`` are not paths)."""
    for arg in args:
        if not arg.startswith("-") and ("/" in arg or arg.endswith(".py")):
            return arg.split("::")[0]
    first = args[0].split("::")[0]
    return None if first.startswith("-") else first


def selection_problem(selection: str, root: Path) -> Outcome | None:
    """An empty selection, or one naming tests the image does not have (checked with or without a GPU)."""
    args = shlex.split(selection)
    if not args:
        return Outcome("error", "empty pytest selection in the recipe")
    path = _test_path(args)
    if path is not None and not (root / path).exists():
        return Outcome("error", f"tests {path!r} are not in the image (looked under {root}): the build did not copy them")
    return None


def pytest_outcome(selection: str, root: Path, interpreter: bool, env: dict[str, str] | None = None) -> Outcome:
    """Run one recipe selection (relative paths from the project copy, absolute ones as given)."""
    problem = selection_problem(selection, root)
    if problem is not None:
        return problem
    args = shlex.split(selection)
    mode = "Triton interpreter on CPU" if interpreter else "GPU"
    return judge(run_pytest(args, root, interpreter, env), f"pytest {selection} ({mode})")


def gpu_skip(gpu) -> Outcome:
    return skip(f"no GPU: {gpu.reason}; the interpreter run above is what runs on a CPU")


def upstream_gpu_skip(gpu, selection: str, root: Path) -> Outcome:
    """Upstream's HIP/CK suites have no CPU path: without a GPU they are not run at all,
    but tests missing from the image are still an error (they would not run on a GPU either)."""
    problem = selection_problem(selection, root)
    if problem is not None:
        return problem
    return skip(f"no GPU: {gpu.reason}; upstream's GPU test suite has no CPU mode, so it was not run")
