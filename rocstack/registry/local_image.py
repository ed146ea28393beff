"""What push needs to know about a local image: rocstack labels and its validation report.

Facts come from the engine (``rocstack.engine.image_facts``: the stack, arches and build
manifest labels) and from the newest validation report (``--report DIR``/report.json,
else ``$ROCSTACK_HOME/reports/<image id hex>/report.json``, loaded and checked by
``rocstack.contracts.load_report``). A report must name this very image id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docker

from rocstack.contracts import LABEL_ARCHES, LABEL_MANIFEST, LABEL_STACK, rocstack_home
from rocstack.engine import image_facts
from rocstack.errors import RocstackError
from rocstack.contracts import load_report


@dataclass(frozen=True)
class LocalImage:
    ref: str
    id: str
    tags: list[str]
    stack: str
    arches: list[str]
    components: list[dict]


def inspect_image(client: docker.DockerClient, ref: str) -> LocalImage:
    facts = image_facts(client, ref)
    labels = facts.rocstack
    if not labels.built_by_rocstack:
        raise RocstackError(
            f"image '{ref}' has no {LABEL_STACK} / {LABEL_ARCHES} labels: it was not built by rocstack",
            "push images made by `rocstack build`",
        )
    if labels.manifest is None:
        state = "a corrupt" if LABEL_MANIFEST in facts.labels else "no"
        raise RocstackError(f"image '{ref}' carries {state} {LABEL_MANIFEST} label (the build manifest)",
                            "rebuild it with `rocstack build`")
    return LocalImage(ref, facts.id, list(facts.tags), labels.stack, list(labels.arches), labels.manifest["components"])


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
    report = load_report(path)
    if report["image"]["id"] != image.id:
        raise RocstackError(
            f"validation report {path} is for image {report['image']['id'][:19]}, not {image.ref} ({image.id[:19]})",
            f"validate this image: rocstack validate --image {image.ref}",
        )
    if report["verdict"] != "pass":
        failed = [c["name"] for c in report["checks"] if c.get("status") in ("fail", "error")]
        listed = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        return ReportLookup(report, path, f"validation verdict {report['verdict']}" + (f" ({listed})" if listed else ""))
    return ReportLookup(report, path, None)
