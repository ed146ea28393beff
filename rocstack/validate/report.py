"""The ``rocstack.validation/v1`` report: assembled from the suite's JSON, judged, checked.

Verdict: ``fail`` if any check failed, else ``error`` if any check could not reach a
result, else ``pass``. Skips never turn into passes and never fail a verdict on their
own; they stay visible with their reason. Exit codes follow: 0 pass, 1 fail, 2 error.
"""

from __future__ import annotations

from dataclasses import dataclass

from rocstack import __version__
from rocstack.errors import RocstackError

SCHEMA = "rocstack.validation/v1"
SUITE_SCHEMA = "rocstack.validation-suite/v1"
STATUSES = ("pass", "fail", "skip", "error")
VERDICT_EXIT = {"pass": 0, "fail": 1, "error": 2}
CHECK_KEYS = {"name", "category", "status", "evidence", "duration_s"}


def verdict_of(checks: list[dict]) -> str:
    statuses = {c["status"] for c in checks}
    if "fail" in statuses:
        return "fail"
    if "error" in statuses or not checks:
        return "error"
    return "pass"


def _checked_suite(suite: dict) -> dict:
    if not isinstance(suite, dict) or suite.get("schema") != SUITE_SCHEMA:
        found = suite.get("schema") if isinstance(suite, dict) else type(suite).__name__
        raise RocstackError(f"the validation suite produced {found!r}, not {SUITE_SCHEMA}",
                            "the image's rocstack_validation is incompatible with this rocstack: rebuild the image")
    for check in suite.get("checks", []):
        missing = CHECK_KEYS - set(check)
        if missing or check["status"] not in STATUSES:
            raise RocstackError(f"the validation suite produced a malformed check {check.get('name')!r}",
                                "rebuild the image with this rocstack's validation suite")
    return suite


@dataclass
class Report:
    data: dict

    @property
    def verdict(self) -> str:
        return self.data["verdict"]

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.verdict]

    @property
    def checks(self) -> list[dict]:
        return self.data["checks"]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for check in self.checks:
            out[check["status"]] += 1
        return out

    @property
    def title(self) -> str:
        image = self.data.get("image")
        if image:
            return self.data.get("reference") or (image.get("tags") or [image["id"][:19]])[0]
        return f"local environment ({self.data.get('stack')})"


def build_report(suite: dict, *, target: str, image: dict | None, gpu_access: dict, duration_s: float,
                 reference: str | None = None) -> Report:
    """Merge the suite's JSON with what the host knows (image identity, GPU access, timing)."""
    suite = _checked_suite(suite)
    checks = suite["checks"]
    data = {
        "schema": SCHEMA,
        "rocstack_version": __version__,
        "target": target,
        "reference": reference,  # what the user asked to validate (a tag, or an id)
        "image": image,
        "stack": suite.get("stack"),
        "arches": suite.get("arches") or [],
        "verdict": verdict_of(checks),
        "started": suite.get("started"),
        "duration_s": round(duration_s, 3),
        "checks": checks,
        "suite_version": suite.get("suite_version"),
        "environment": suite.get("environment") or {},
        "gpu_access": gpu_access,
        "notes": suite.get("notes") or [],
        "manifest": suite.get("manifest"),
        "benchmarks": suite.get("benchmarks"),
    }
    return Report(data)
