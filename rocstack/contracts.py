"""The exchange formats rocstack shares between its parts, each defined once.

Schema names, image labels, paths inside images, the default stack and the state
directory are read and written by several subsystems (imaging writes what validate,
registry and the in-image suite read). They live here, above those subsystems, so a
name cannot drift between a writer and its readers. It imports nothing of rocstack's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.errors import RocstackError

# -- schema names ---------------------------------------------------------------------
BUILD_MANIFEST_SCHEMA = "rocstack.build-manifest/v1"
SUITE_SCHEMA = "rocstack.validation-suite/v1"  # what the in-image suite prints
REPORT_SCHEMA = "rocstack.validation/v1"  # the host's validation report

# -- paths inside images built by rocstack ---------------------------------------------
MANIFEST_PATH = "/opt/rocstack/manifest.json"
PROJECT_PATH = "/opt/rocstack/src"  # the project copy: recipes/, images/, validation/, kernels/
BUILDER_MARKERS_DIR = "/out/rocstack-build"  # a builder stage's own marker (rocstack-jobs, the ledger), copied to:
BUILD_MARKERS_PATH = "/opt/rocstack/build"  # <component>.json per builder stage that ran (rocstack-jobs)

# -- image labels ----------------------------------------------------------------------
LABEL_STACK = "io.rocstack.stack"
LABEL_ARCHES = "io.rocstack.arches"  # comma list of target IDs
LABEL_COMPONENTS = "io.rocstack.components"  # compact JSON {name: source ref}
LABEL_MANIFEST = "io.rocstack.manifest"  # compact JSON of the build manifest
LABEL_CONTENT_HASH = "io.rocstack.content-hash"
LABEL_RUNTIME_IMAGE = "io.rocstack.runtime-image"  # id of the image the manifest layer sits on
LABEL_BASE_INPUTS = "io.rocstack.base-inputs"  # hash of a locally built base image's inputs
LABEL_VERDICT = "io.rocstack.verdict"  # on attestation artifacts
LABEL_LEVEL = "io.rocstack.level"  # on attestation artifacts: gpu-verified | static-only | unvalidated
LABEL_VALIDATION_CONTAINER = "io.rocstack.validation"  # on throwaway validation containers

# -- verification levels: what a validation report states, and what an attestation carries
GPU_VERIFIED, STATIC_ONLY, UNVALIDATED = "gpu-verified", "static-only", "unvalidated"
LEVELS = (GPU_VERIFIED, STATIC_ONLY, UNVALIDATED)
GPU_CATEGORIES = ("correctness", "performance")  # checks that need a GPU to mean anything
GPU_CHECK_NAMES = ("gpu-arch",)


def is_gpu_check(check: dict) -> bool:
    return check.get("category") in GPU_CATEGORIES or check.get("name") in GPU_CHECK_NAMES


def derive_level(checks: list[dict], device: dict | None) -> tuple[str, str]:
    """(gpu-verified | static-only, one-line reason) from a report's checks and the GPU it ran on.

    The one rule: validate writes it into every report (``level``); an attestation of a
    report that states none (made before the field existed) derives it the same way.
    """
    gpu_checks = [c for c in checks if is_gpu_check(c)]
    skipped = [c for c in gpu_checks if c.get("status") == "skip"]
    if skipped:
        names = ", ".join(c["name"] for c in skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        why = str(skipped[0].get("evidence") or "").strip().splitlines()
        return STATIC_ONLY, f"GPU checks skipped: {names}" + (f" ({why[0][:160]})" if why else "")
    if not gpu_checks:
        return STATIC_ONLY, "the report has no GPU check (correctness, performance or gpu-arch)"
    if (device or {}).get("available") is False:
        return STATIC_ONLY, f"no GPU in the validation environment ({(device or {}).get('reason') or 'unknown'})"
    return GPU_VERIFIED, f"{len(gpu_checks)} GPU checks ran, none skipped"


# -- the stored validation report: its shape, checked where it is read back (push) ----------
VERDICT_EXIT = {"pass": 0, "fail": 1, "error": 2}  # a report's verdict -> validate's exit status


def report_problem(report: object) -> str | None:
    """Why ``report`` is not a well-formed validation report of an image, or None."""
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        return f"is not a {REPORT_SCHEMA} report"
    image = report.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("id"), str):
        return "names no image id"
    if report.get("verdict") not in VERDICT_EXIT:
        return f"has an unknown verdict {report.get('verdict')!r}"
    checks = report.get("checks")
    if not isinstance(checks, list) or not all(isinstance(c, dict) and "name" in c and "status" in c for c in checks):
        return "has no well-formed checks list"
    if report["verdict"] == "pass" and any(c["status"] in ("fail", "error") for c in checks):
        return "says pass although a check failed"
    if report.get("level") is not None and report["level"] not in LEVELS:
        return f"states an unknown level {report['level']!r}"
    return None


def load_report(path: Path) -> dict:
    """A stored report.json, checked; a missing, unreadable or malformed one is a one-line error."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RocstackError(f"cannot read validation report {path}: {exc}", "re-run rocstack validate") from None
    problem = report_problem(report)
    if problem:
        raise RocstackError(f"validation report {path} {problem}", f"re-run rocstack validate (schema {REPORT_SCHEMA})")
    return report


# -- stacks and state ------------------------------------------------------------------
DEFAULT_STACK = "local"


def rocstack_home() -> Path:
    """rocstack's own state: $ROCSTACK_HOME, default ~/.rocstack (reports, keys, config, logs, contexts).

    Made private (0700) when rocstack creates it, whatever the umask: it holds the trust list.
    """
    home = Path(os.environ.get("ROCSTACK_HOME") or Path.home() / ".rocstack")
    if not home.exists():
        try:
            home.mkdir(parents=True, mode=0o700)
            home.chmod(0o700)  # mkdir's mode is masked by the umask
        except OSError:
            pass  # whatever writes there next reports the problem, with its path
    return home


def logs_dir() -> Path:
    return rocstack_home() / "logs"


def reports_dir() -> Path:
    """``<image id hex>/report.json``: the newest validation report of each image (written by validate, read by push)."""
    return rocstack_home() / "reports"


def compact_json(data) -> str:
    """JSON as labels carry it: sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ImageLabels:
    """What rocstack's labels say about an image, parsed once for local and remote images alike.

    Missing labels are empty values; ``problems`` lists labels that are present but unreadable.
    """

    stack: str = ""
    arches: tuple[str, ...] = ()
    components: dict = field(default_factory=dict)
    manifest: dict | None = None
    problems: tuple[str, ...] = ()

    @property
    def built_by_rocstack(self) -> bool:
        return bool(self.stack and self.arches)


def parse_labels(labels: dict | None) -> ImageLabels:
    labels = labels or {}
    problems = []
    arches = tuple(a.strip() for a in labels.get(LABEL_ARCHES, "").split(",") if a.strip())
    components: dict = {}
    if labels.get(LABEL_COMPONENTS):
        try:
            components = json.loads(labels[LABEL_COMPONENTS])
            if not isinstance(components, dict):
                raise TypeError
        except (ValueError, TypeError):
            components = {}
            problems.append(f"{LABEL_COMPONENTS} is not a JSON object")
    manifest = None
    if labels.get(LABEL_MANIFEST):
        try:
            manifest = json.loads(labels[LABEL_MANIFEST])
            entries = manifest["components"]
            if not isinstance(entries, list) or not all(isinstance(c, dict) and "name" in c for c in entries):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            manifest = None
            problems.append(f"{LABEL_MANIFEST} is corrupt")
    return ImageLabels(labels.get(LABEL_STACK, ""), arches, components, manifest, tuple(problems))
