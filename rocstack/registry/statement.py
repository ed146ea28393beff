"""What a rocstack attestation says: an in-toto Statement v1 with the validation predicate.

The statement's ``subject`` is the image (``HOST/REPO`` + manifest sha256); its
``predicateType`` is :data:`PREDICATE_TYPE`; the predicate carries the verdict, the
verification level, arches, components, the GPU evidence, a check summary and the
full (credential-masked) validation report with its sha256. The report sits inside
the predicate rather than in a second blob: one signed object cannot be separated
from its verdict, lost by a registry's garbage collector or dropped by a mirror, and
cosign reads a bundle artifact only when it has exactly one layer.

Pure functions over parsed data; signing and storage live in ``dsse`` and ``artifacts``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from rocstack import __version__
from rocstack.contracts import GPU_VERIFIED, LEVELS, STATIC_ONLY, UNVALIDATED, derive_level, is_gpu_check
from rocstack.errors import RocstackError
from rocstack.registry.refusals import VerificationError, canonical_json, parse_json

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://rocstack.dev/attestation/validation/v1"
__all__ = ["GPU_VERIFIED", "LEVELS", "STATIC_ONLY", "UNVALIDATED", "is_gpu_check"]  # levels: rocstack.contracts
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_LISTED = 20  # check names listed in the summary; the report holds them all


@dataclass(frozen=True)
class Level:
    level: str
    source: str  # "report" (the report states it) | "derived" (from its checks here)
    reason: str  # one line: why this level


def verification_level(report: dict | None, validated: bool) -> Level:
    """gpu-verified, static-only or unvalidated; the report's own ``level`` wins when it has one."""
    if not validated or not report or report.get("verdict") != "pass":
        verdict = (report or {}).get("verdict")
        return Level(UNVALIDATED, "derived", f"verdict {verdict}" if verdict else "no validation report")
    stated = report.get("level")
    if stated is not None:
        if stated not in LEVELS:
            raise RocstackError(
                f"the validation report states level {stated!r}, not one of {', '.join(LEVELS)}",
                "validate the image again with this rocstack",
            )
        why = report.get("level_reason")
        return Level(stated, "report", f"stated by the report ({stated}{': ' + why if why else ''})")
    level, reason = derive_level(report.get("checks") or [], (report.get("environment") or {}).get("gpu"))
    return Level(level, "derived", reason)


def check_summary(report: dict | None) -> dict:
    checks = (report or {}).get("checks") or []
    counts = {status: sum(1 for c in checks if c.get("status") == status) for status in ("pass", "fail", "skip", "error")}
    failed = [c["name"] for c in checks if c.get("status") in ("fail", "error")]
    gpu_skipped = [c["name"] for c in checks if is_gpu_check(c) and c.get("status") == "skip"]
    return {
        "total": len(checks),
        **counts,
        "failed": failed[:MAX_LISTED],
        "gpu_skipped": gpu_skipped[:MAX_LISTED],
    }


def gpu_evidence(report: dict | None) -> dict | None:
    """The GPU the checks ran on (or why none did), as the report recorded it."""
    if not report:
        return None
    device = (report.get("environment") or {}).get("gpu")
    access = report.get("gpu_access") or {}
    if device is None and not access:
        return None
    return {"device": device, "access": {"vendor": access.get("vendor"), "reason": access.get("reason")}}


def report_digest(report: dict) -> str:
    return hashlib.sha256(canonical_json(report)).hexdigest()


def build_predicate(
    *,
    image_id: str,
    media_type: str,
    stack: str,
    arches: list[str],
    components: list[dict],
    report: dict | None,
    validated: bool,
    unvalidated_reason: str | None = None,
    created: str | None = None,
) -> dict:
    level = verification_level(report, validated)
    return {
        "verdict": report.get("verdict") if report else None,
        "level": level.level,
        "level_source": level.source,
        "level_reason": level.reason,
        "validated": validated,
        "unvalidated_reason": unvalidated_reason,
        "image": {"id": image_id, "media_type": media_type},
        "stack": stack,
        "arches": list(arches),
        "components": [{key: c.get(key) for key in ("name", "version", "ref", "source_sha256")} for c in components],
        "gpu": gpu_evidence(report),
        "checks": check_summary(report),
        "report": None if report is None else {
            "schema": report.get("schema"),
            "started": report.get("started"),
            "sha256": report_digest(report),
            "document": report,
        },
        "created": created or datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "rocstack_version": __version__,
    }


def build_statement(repository: str, digest: str, predicate: dict) -> dict:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or not _HEX64.match(hexpart):
        raise RocstackError(f"cannot attest {digest!r}: not a sha256 manifest digest", "push again")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {"sha256": hexpart}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


@dataclass(frozen=True)
class Claim:
    """A parsed statement: the subject digests and the predicate, shape-checked."""

    subject_digests: tuple[str, ...]  # "sha256:<hex>"
    predicate: dict

    @property
    def digest(self) -> str:
        return self.subject_digests[0]

    @property
    def verdict(self) -> str | None:
        return self.predicate.get("verdict")

    @property
    def level(self) -> str:
        return self.predicate["level"]

    @property
    def validated(self) -> bool:
        return self.predicate["validated"]

    @property
    def stack(self) -> str:
        return self.predicate["stack"]

    @property
    def arches(self) -> list[str]:
        return list(self.predicate["arches"])

    @property
    def components(self) -> list[dict]:
        return list(self.predicate.get("components") or [])

    @property
    def checks(self) -> dict:
        return dict(self.predicate.get("checks") or {})

    @property
    def report(self) -> dict | None:
        return (self.predicate.get("report") or {}).get("document")

    @property
    def validated_at(self) -> str | None:
        return (self.predicate.get("report") or {}).get("started")

    @property
    def gpu(self) -> dict | None:
        return self.predicate.get("gpu")


def _corrupt(what: str) -> VerificationError:
    return VerificationError("corrupt", f"attestation statement {what}")


def parse_statement(payload: bytes) -> Claim:
    """The statement in a DSSE payload, or a ``corrupt`` refusal naming what is wrong."""
    statement = parse_json(payload, "attestation statement")
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise _corrupt(f"is not an in-toto {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise _corrupt(f"has predicateType {statement.get('predicateType')!r}, not {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    digests = tuple(
        "sha256:" + s["digest"]["sha256"]
        for s in subjects if isinstance(s, dict) and isinstance(s.get("digest"), dict)
        and _HEX64.match(str(s["digest"].get("sha256", "")))
    ) if isinstance(subjects, list) else ()
    if not digests:
        raise _corrupt("has no subject with a sha256 digest")
    return Claim(digests, checked_predicate(statement.get("predicate")))


def checked_predicate(predicate: object) -> dict:
    if not isinstance(predicate, dict):
        raise _corrupt("has no predicate object")
    arches = predicate.get("arches")
    if not isinstance(arches, list) or not arches or not all(isinstance(a, str) for a in arches):
        raise _corrupt("predicate has no arch list")
    if not isinstance(predicate.get("stack"), str) or not isinstance(predicate.get("validated"), bool):
        raise _corrupt("predicate lacks stack or validated")
    if predicate.get("level") not in LEVELS:
        raise _corrupt(f"predicate has level {predicate.get('level')!r}, not one of {', '.join(LEVELS)}")
    report = predicate.get("report")
    if report is not None:
        document = report.get("document") if isinstance(report, dict) else None
        if not isinstance(document, dict) or report_digest(document) != report.get("sha256"):
            raise _corrupt("predicate's report does not match its sha256")
        if not isinstance(report.get("started"), (str, type(None))):
            raise _corrupt("predicate's report has a start time that is not a string")
    problem = _summary_shape_problem(predicate)
    if problem:
        raise _corrupt(f"predicate {problem}")
    return predicate


def _summary_shape_problem(predicate: dict) -> str | None:
    """What pull and images could not read in the predicate's summaries (signed is not well-formed)."""
    if not isinstance(predicate.get("verdict"), (str, type(None))):
        return "has a verdict that is not a string"
    components = predicate.get("components")
    if components is not None and not (isinstance(components, list) and all(isinstance(c, dict) for c in components)):
        return "has components that are not a list of objects"
    checks = predicate.get("checks")
    if checks is not None and not (
        isinstance(checks, dict)
        and all(isinstance(checks.get(s) or 0, int) for s in ("pass", "skip", "fail", "error"))
    ):
        return "has check counts that are not integers"
    gpu = predicate.get("gpu")
    if gpu is not None and not (isinstance(gpu, dict) and isinstance(gpu.get("device") or {}, dict)):
        return "has GPU evidence that is not an object"
    return None


def report_shape_problem(report: dict) -> str | None:
    """What the predicate's summaries could not read in a validation report (one embedded in an
    old attestation is untrusted input); None when they can."""
    checks = report.get("checks")
    if checks is not None and not (
        isinstance(checks, list) and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in checks)
    ):
        return "the validation report's checks are not a list of named check objects"
    for key in ("verdict", "level", "level_reason"):
        if not isinstance(report.get(key), (str, type(None))):
            return f"the validation report's {key} is not a string"
    for key in ("environment", "gpu_access"):
        if not isinstance(report.get(key) or {}, dict):
            return f"the validation report's {key} is not an object"
    if not isinstance((report.get("environment") or {}).get("gpu") or {}, dict):
        return "the validation report's environment.gpu is not an object"
    return None
