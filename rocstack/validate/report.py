"""The ``rocstack.validation/v1`` report: assembled from the suite's JSON, judged, checked, loaded.

Verdict: ``fail`` if any check failed, else ``error`` if any check could not reach a
result, else ``pass``. Skips never turn into passes and never fail a verdict on their
own; they stay visible with their reason. Exit codes follow: 0 pass, 1 fail, 2 error.
A report read back from disk (by ``push``) goes through ``rocstack.contracts.load_report``, the one
check of a stored report's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from rocstack import __version__
from rocstack.contracts import REPORT_SCHEMA, STATIC_ONLY, SUITE_SCHEMA, VERDICT_EXIT, derive_level
from rocstack.errors import RocstackError

SCHEMA = REPORT_SCHEMA
STATUSES = ("pass", "fail", "skip", "error")
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
    def level(self) -> str:
        return self.data.get("level") or derive_level(self.checks, (self.data.get("environment") or {}).get("gpu"))[0]

    @property
    def title(self) -> str:
        image = self.data.get("image")
        if image:
            return self.data.get("reference") or (image.get("tags") or [image["id"][:19]])[0]
        return f"local environment ({self.data.get('stack')})"


REQUIRE_GPU_CHECK = "gpu-required"


def gpu_summary(device: dict | None) -> dict | None:
    """The GPU that ran the checks (name, target ID, driver, runtime), or None when none did."""
    if not device or not device.get("available"):
        return None
    return {key: device.get(key) for key in ("vendor", "name", "arch", "target_id", "driver", "runtime", "count")}


def require_gpu_check(level: str, reason: str) -> dict:
    """``--require-gpu``: a static-only validation is a failure, with the reason as evidence."""
    if level == STATIC_ONLY:
        return {"name": REQUIRE_GPU_CHECK, "category": "python", "status": "fail", "duration_s": 0.0, "component": None,
                "evidence": f"--require-gpu: the validation is static-only ({reason}); run it on a host whose GPU "
                            "the container can use (AMD: /dev/kfd and /dev/dri)"}
    return {"name": REQUIRE_GPU_CHECK, "category": "python", "status": "pass", "duration_s": 0.0, "component": None,
            "evidence": f"--require-gpu: {reason}"}


def build_report(suite: dict, *, target: str, image: dict | None, gpu_access: dict, duration_s: float,
                 reference: str | None = None, require_gpu: bool = False, extra: dict | None = None) -> Report:
    """Merge the suite's JSON with what the host knows (image identity, GPU access, timing).

    Every report states its ``level`` (gpu-verified | static-only, by ``contracts.derive_level``)
    and the GPU the checks ran on; ``require_gpu`` turns static-only into a failing check.
    """
    suite = _checked_suite(suite)
    checks = list(suite["checks"])
    device = (suite.get("environment") or {}).get("gpu")
    level, level_reason = derive_level(checks, device)
    if require_gpu:
        checks.append(require_gpu_check(level, level_reason))
    data = {
        "schema": SCHEMA,
        "rocstack_version": __version__,
        "target": target,
        "reference": reference,  # what the user asked to validate (a tag, or an id)
        "image": image,
        "stack": suite.get("stack"),
        "arches": suite.get("arches") or [],
        "verdict": verdict_of(checks),
        "level": level,
        "level_reason": level_reason,
        "gpu": gpu_summary(device),
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
    data.update(extra or {})
    return Report(data)
