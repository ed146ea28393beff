"""What push needs to know about a local image: rocstack labels and its validation report.

Facts come from the engine (labels ``io.rocstack.stack``, ``io.rocstack.arches``,
``io.rocstack.manifest``) and from the newest validation report
(``--report DIR``/report.json, else ``$ROCSTACK_HOME/reports/<image id hex>/report.json``,
schema ``rocstack.validation/v1``). A report must name this very image id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from rocstack.errors import RocstackError
from rocstack.registry.config import rocstack_home

REPORT_SCHEMA = "rocstack.validation/v1"


@dataclass(frozen=True)
class LocalImage:
    ref: str
    id: str
    tags: list[str]
    stack: str
    arches: list[str]
    components: list[dict]


def inspect_image(client: docker.DockerClient, ref: str) -> LocalImage:
    try:
        image = client.images.get(ref)
    except ImageNotFound:
        raise RocstackError(f"no local image '{ref}'", "build it with `invoke build` or check `docker images`") from None
    except APIError as exc:
        raise RocstackError(f"the engine could not inspect '{ref}': {exc.explanation}") from None
    labels = image.labels or {}
    stack = labels.get("io.rocstack.stack")
    arches = [a.strip() for a in labels.get("io.rocstack.arches", "").split(",") if a.strip()]
    if not stack or not arches:
        raise RocstackError(
            f"image '{ref}' has no io.rocstack.stack / io.rocstack.arches labels: it was not built by rocstack",
            "push images made by `invoke build`",
        )
    return LocalImage(ref, image.id, list(image.tags), stack, arches, _components(ref, labels))


def _components(ref: str, labels: dict) -> list[dict]:
    text = labels.get("io.rocstack.manifest")
    if not text:
        raise RocstackError(
            f"image '{ref}' has no io.rocstack.manifest label (the build manifest)", "rebuild it with `invoke build`"
        )
    try:
        components = json.loads(text)["components"]
        if not isinstance(components, list) or not all(isinstance(c, dict) and "name" in c for c in components):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RocstackError(
            f"image '{ref}' carries a corrupt io.rocstack.manifest label", "rebuild it with `invoke build`"
        ) from None
    return components


@dataclass(frozen=True)
class ReportLookup:
    report: dict | None
    path: Path
    problem: str | None  # why the image does not count as validated; None when it passed


def find_report(image: LocalImage, report_dir: Path | None = None, home: Path | None = None) -> ReportLookup:
    hexid = image.id.split(":", 1)[-1]
    path = (report_dir / "report.json") if report_dir else (home or rocstack_home()) / "reports" / hexid / "report.json"
    if not path.exists():
        return ReportLookup(None, path, f"no validation report at {path}")
    report = _load_report(path)
    if report["image"]["id"] != image.id:
        raise RocstackError(
            f"validation report {path} is for image {report['image']['id'][:19]}, not {image.ref} ({image.id[:19]})",
            f"validate this image: invoke validate --image {image.ref}",
        )
    if report["verdict"] != "pass":
        failed = [c["name"] for c in report["checks"] if c.get("status") in ("fail", "error")]
        listed = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        return ReportLookup(report, path, f"validation verdict {report['verdict']}" + (f" ({listed})" if listed else ""))
    return ReportLookup(report, path, None)


def _load_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RocstackError(f"cannot read validation report {path}: {exc}", "re-run invoke validate") from None
    problem = _schema_problem(report)
    if problem:
        raise RocstackError(f"validation report {path} {problem}", f"re-run invoke validate (schema {REPORT_SCHEMA})")
    return report


def _schema_problem(report: object) -> str | None:
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        return f"is not a {REPORT_SCHEMA} report"
    image = report.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("id"), str):
        return "names no image id"
    if report.get("verdict") not in ("pass", "fail", "error"):
        return f"has an unknown verdict {report.get('verdict')!r}"
    checks = report.get("checks")
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "name" in c and "status" in c for c in checks):
        return "has no well-formed checks list"
    if report["verdict"] == "pass" and any(c["status"] in ("fail", "error") for c in checks):
        return "says pass although a check failed"
    return None
