"""One check's outcome, and the wrapper that times a check and turns a crash into ``error``."""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

STATUSES = ("pass", "fail", "skip", "error")

CATEGORIES = ("audit", "python", "correctness", "performance")


@dataclass
class Outcome:
    """What a check function returns: status, human evidence, optional structured details."""

    status: str
    evidence: str
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")


@dataclass
class CheckResult:
    name: str
    category: str
    status: str
    evidence: str
    duration_s: float
    component: str | None = None
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        if not data["details"]:
            del data["details"]
        return data


def skip(reason: str, **details) -> Outcome:
    return Outcome("skip", reason, details)


def run_check(name: str, category: str, body: Callable[[], Outcome], component: str | None = None) -> CheckResult:
    """Run one check; a crash inside it is this check's ``error`` (with the cause), not the suite's."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown check category {category!r}")
    start = time.monotonic()
    try:
        outcome = body()
    except Exception as exc:  # one broken check must not hide the others' results
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
        outcome = Outcome("error", f"the check itself crashed: {type(exc).__name__}: {exc}{where}")
    return CheckResult(
        name=name,
        category=category,
        status=outcome.status,
        evidence=outcome.evidence,
        duration_s=time.monotonic() - start,
        component=component,
        details=outcome.details,
    )
