"""Ahead-of-time kernel builds: every image arch has every kernel, and the files are intact.

A component that installs an AOT build (``rocstack kernels build`` writes a
``rocstack.kernels-build/v1`` manifest.json next to its code objects) is checked against
the image arches: an arch missing from the build, or a specialization that failed to
compile, means the kernel JIT-compiles at first use on the GPU (or fails there). A
kernel recorded ``unsupported`` (FP8 on gfx90a) is listed with its reason, not failed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from rocstack_validation.results import Outcome

KERNELS_BUILD_SCHEMA = "rocstack.kernels-build/v1"
MAX_LISTED = 8
TRITON_DISTRIBUTIONS = ("triton", "pytorch-triton-rocm", "pytorch-triton")


def installed_triton() -> str | None:
    from importlib import metadata

    for name in TRITON_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _same_public(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a).public == Version(b).public
    except InvalidVersion:
        return a == b


def aot_manifests(component, sysroot: str = "/") -> list[Path]:
    recipe = component.recipe
    if recipe is None:
        return []
    found = []
    for destination in recipe.artifacts.files.values():
        path = Path(sysroot) / destination.lstrip("/") / "manifest.json"
        if path.is_file():
            try:
                if json.loads(path.read_text()).get("schema") == KERNELS_BUILD_SCHEMA:
                    found.append(path)
            except (OSError, ValueError):
                found.append(path)  # unreadable: check_aot reports it
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _grouped(entries: list[dict]) -> str:
    by_kernel: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_kernel[f"{entry.get('kernel')} on {entry.get('target')}"].append(str(entry.get("label", "")))
    parts = [f"{k} ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})" for k, v in list(by_kernel.items())[:MAX_LISTED]]
    return "; ".join(parts)


def check_aot(manifest_path: Path, arches: list) -> Outcome:
    """``arches``: the image's target IDs."""
    try:
        build = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return Outcome("fail", f"kernel build manifest {manifest_path} is unreadable: {exc}")
    root = manifest_path.parent
    wanted = {a.processor for a in arches}
    built_for = {str(t).split(":")[0] for t in build.get("targets", [])}
    entries = [e for e in build.get("entries", []) if str(e.get("target", "")).split(":")[0] in wanted]
    problems = []
    missing = sorted(wanted - built_for)
    if missing:
        problems.append(f"the AOT build has no code for {', '.join(missing)} (built for {', '.join(sorted(built_for)) or 'nothing'}): "
                        "rebuild the image with those arches")
    failed = [e for e in entries if e.get("status") == "failed"]
    if failed:
        errors = sorted({str(e.get("error", "no error recorded")) for e in failed})[:3]
        problems.append(f"{len(failed)} kernel specialization(s) failed to compile ahead of time: {_grouped(failed)} "
                        f"[{' | '.join(errors)}]: they would JIT-compile at first use or fail on the GPU")
    broken = []
    built = [e for e in entries if e.get("status") == "built"]
    for entry in built:
        path = root / str(entry.get("code_object", ""))
        if not path.is_file():
            broken.append(f"{entry.get('code_object')} is missing")
        elif entry.get("sha256") and _sha256(path) != entry["sha256"]:
            broken.append(f"{entry.get('code_object')} does not match its recorded sha256")
    if broken:
        problems.append(f"{len(broken)} code object(s) damaged: " + "; ".join(broken[:MAX_LISTED]))
    built_by, runtime = build.get("triton_version"), installed_triton()
    if built_by and runtime is None:
        problems.append(f"the code objects were built by Triton {built_by} but no Triton is installed to run them")
    elif built_by and not _same_public(str(built_by), runtime):
        problems.append(f"the code objects were built by Triton {built_by} but the image runs Triton {runtime}: "
                        "its cache keys differ, so every kernel recompiles at first use (rebuild the image)")
    unsupported = [e for e in entries if e.get("status") == "unsupported"]
    note = ""
    if unsupported:
        reasons = sorted({str(e.get("reason", "no reason recorded")) for e in unsupported})[:3]
        note = f"; {len(unsupported)} unsupported by design ({_grouped(unsupported)}: {' | '.join(reasons)})"
    details = {"manifest": str(manifest_path), "targets": sorted(built_for), "built": len(built), "failed": len(failed),
               "unsupported": len(unsupported), "damaged": len(broken), "triton_built_by": built_by, "triton_installed": runtime}
    if problems:
        return Outcome("fail", " ".join(problems) + note, details)
    return Outcome("pass", f"{len(built)} code objects for {', '.join(sorted(wanted))} present and intact "
                           f"(Triton {build.get('triton_version')}){note}", details)
