"""The static part of validating any image: audit what it installed, from outside, with the image as sysroot.

What is audited, each as its own component of the coverage matrix:

- every Python distribution under a ``site-packages`` / ``dist-packages`` whose RECORD
  names a shared library or device code (its top-level directories and files);
- every ROCm prefix (``/opt/rocm*``, symlinks to one counted once);
- every installed dpkg package of ROCm (``X-Rocm-Gpu-Architecture``, or a ROCm
  homepage/maintainer) outside those prefixes: its directories of its own, else its files.

The audit runs once (``rocstack.audit.run_audit``) with the image's ``LD_LIBRARY_PATH``
and environment (``ROCM_KPACK_*`` steer where kpack-split libraries find their archives),
torch preloaded for its extensions, and the target arches; every group's paths are one
component of the coverage matrix (kernel-set rules judge a component as a whole); its
findings are split into one ``audit:<component>`` check each. Paths in findings and in
the coverage matrix are rewritten to paths inside the image.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.arches import TargetID
from rocstack.validate.imagefs import is_metadata
from rocstack.validate.inventory import Inventory

MAX_LISTED = 10
MAX_DETAILS = 200


@dataclass
class Group:
    name: str  # what the reports call it: "torch 2.5.1", "librocfft0 7.2.4", "/opt/rocm-7.0.0"
    kind: str  # "python" | "dpkg" | "rocm-prefix"
    paths: list[str] = field(default_factory=list)  # inside the image

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "paths": self.paths}


def _has_binaries(host: Path) -> bool:
    if host.is_file():
        return not is_metadata(host.name)
    for folder, _dirs, names in os.walk(host):
        rel = os.path.relpath(folder, host)
        if any(not is_metadata(os.path.join(rel, n)) for n in names if os.path.isfile(os.path.join(folder, n))):
            return True
    return False


def _python_groups(inventory: Inventory, claimed: set[str]) -> list[Group]:
    out = []
    for dist in inventory.distributions:
        if "-packages" not in dist.site:
            continue
        paths = []
        for entry in dist.files:
            top = entry.split("/", 1)[0]
            if not top or top.startswith("..") or top.endswith((".dist-info", ".data")) or top == "__pycache__":
                continue
            inside = f"{dist.site}/{top}"
            if inside in claimed or inside in paths:
                continue
            host = inventory.root / inside.lstrip("/")
            if (host.is_dir() or host.is_file()) and not host.is_symlink() and _has_binaries(host):
                paths.append(inside)
        if paths:
            claimed.update(paths)
            out.append(Group(f"{dist.name} {dist.version}", "python", paths))
    return out


def _prefix_groups(inventory: Inventory, claimed: set[str]) -> list[Group]:
    out = []
    for host in sorted(inventory.root.glob("opt/rocm*")):
        if host.is_dir() and not host.is_symlink() and _has_binaries(host):
            inside = "/" + str(host.relative_to(inventory.root))
            claimed.add(inside)
            out.append(Group(inside, "rocm-prefix", [inside]))
    return out


def _owned_dir(path: str, package: str, owners: dict[str, set[str]]) -> str:
    """The highest ancestor directory of ``path`` that only ``package`` lists, else ``path`` itself."""
    best = path
    parent = os.path.dirname(path)
    while parent not in ("/", "") and owners.get(parent) == {package}:
        best, parent = parent, os.path.dirname(parent)
    return best


def _dpkg_groups(inventory: Inventory, claimed: set[str]) -> list[Group]:
    owners: dict[str, set[str]] = defaultdict(set)
    for package in inventory.packages:
        for entry in package.files:
            parent = os.path.dirname(entry)
            while parent not in ("/", ""):
                owners[parent].add(package.name)
                parent = os.path.dirname(parent)
    out = []
    for package in inventory.rocm_packages():
        paths: list[str] = []
        for entry in package.files:
            host = inventory.root / entry.lstrip("/")
            if any(entry == c or entry.startswith(c.rstrip("/") + "/") for c in claimed):
                continue
            if not host.is_file() or host.is_symlink() or is_metadata(entry.lstrip("/")):
                continue
            chosen = _owned_dir(entry, package.name, owners)
            if chosen not in paths and not any(chosen.startswith(p + "/") for p in paths):
                paths = [p for p in paths if not p.startswith(chosen + "/")] + [chosen]
        if paths:
            claimed.update(paths)
            out.append(Group(f"{package.name} {package.version}", "dpkg", sorted(paths)))
    return out


def audit_groups(inventory: Inventory) -> list[Group]:
    claimed: set[str] = set()
    return _prefix_groups(inventory, claimed) + _python_groups(inventory, claimed) + _dpkg_groups(inventory, claimed)


def torch_offload_targets(inventory: Inventory) -> tuple[list[str], str] | None:
    """torch's arch list without running it: the offload targets of ``torch/lib/libtorch_hip.so``."""
    from rocstack.audit import run_audit

    for dist in inventory.distributions:
        if dist.key != "torch":
            continue
        inside = f"{dist.site}/torch/lib/libtorch_hip.so"
        host = inventory.root / inside.lstrip("/")
        if not host.is_file():
            return None
        report = run_audit([str(host)], targets=[], sysroot=str(inventory.root), env=inventory.env)
        targets = sorted({t for f in report.files for t in ((f.fatbin or {}).get("targets") or [])})
        return targets, inside
    return None


def _rewrite(value, root: str):
    """Host paths under ``root`` -> paths inside the image, anywhere in a JSON-like value."""
    if isinstance(value, str):
        return value.replace(root + "/", "/").replace(root, "/") if root in value else value
    if isinstance(value, list):
        return [_rewrite(v, root) for v in value]
    if isinstance(value, dict):
        return {_rewrite(k, root): _rewrite(v, root) for k, v in value.items()}
    return value


def _owner(path: str, groups: list[Group]) -> Group | None:
    """The group a file belongs to (a component-level finding names the group itself)."""
    for group in groups:
        if path == group.name:
            return group
    for group in groups:
        for prefix in group.paths:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/") or path.startswith(prefix + "!"):
                return group
    return None


def _finding_line(finding: dict) -> str:
    text = f"[{finding['check']}] {finding['file']}: {finding['message']}"
    if finding.get("evidence"):
        text += f" ({' '.join(str(finding['evidence']).split())[:240]})"
    return text


def group_check(group: Group, findings: list[dict], files: list[dict], targets: list[TargetID], seconds: float) -> dict:
    errors = [f for f in findings if f["severity"] == "error"]
    warnings = [f for f in findings if f["severity"] == "warning"]
    scope = f"{len(files)} file(s) for {', '.join(str(t) for t in targets) or 'no target arch'}"
    details = {"group": group.to_json(), "files": [f["path"] for f in files][:MAX_DETAILS],
               "targets": [str(t) for t in targets], "findings": (errors + warnings)[:MAX_DETAILS]}
    if not files:
        status, evidence = "error", f"nothing auditable was read from {', '.join(group.paths)}"
    elif errors and all(f["check"] == "io" for f in errors):
        status, evidence = "error", f"the audit could not read {len(errors)} of {scope}: " + "; ".join(
            _finding_line(f) for f in errors[:MAX_LISTED])
    elif errors:
        more = f" (+{len(errors) - MAX_LISTED} more)" if len(errors) > MAX_LISTED else ""
        hints = sorted({f["hint"] for f in errors if f.get("hint")})[:3]
        status = "fail"
        evidence = (f"{len(errors)} error finding(s) in {scope}: " + "; ".join(_finding_line(f) for f in errors[:MAX_LISTED])
                    + more + (f". Fix: {' / '.join(hints)}" if hints else ""))
    else:
        status = "pass"
        evidence = f"no error findings in {scope}" + (
            f", {len(warnings)} warning(s): " + "; ".join(_finding_line(f) for f in warnings[:3]) if warnings else "")
    return {"name": f"audit:{group.name.split()[0]}", "category": "audit", "status": status, "evidence": evidence,
            "duration_s": round(seconds, 3), "component": group.name, "details": details}


@dataclass
class StaticAudit:
    checks: list[dict]
    coverage: dict | None
    groups: list[Group]
    declared: list
    counts: dict


def run_static_audit(inventory: Inventory, targets: list[TargetID]) -> StaticAudit:
    from rocstack.audit import AuditPolicy, run_audit

    groups = audit_groups(inventory)
    if not groups:
        check = {"name": "audit", "category": "audit", "status": "error", "duration_s": 0.0, "component": None,
                 "evidence": "nothing auditable: no Python distribution with native code, no /opt/rocm* prefix and no "
                             "ROCm dpkg package in the image (0 files audited is not a pass)"}
        return StaticAudit([check], None, [], [], {})
    start = time.monotonic()
    root = str(inventory.root)
    preload = ["torch"] if any(d.key == "torch" for d in inventory.distributions) else []
    library_path = [d for d in inventory.env.get("LD_LIBRARY_PATH", "").split(":") if d.startswith("/")]
    components = {str(inventory.root / p.lstrip("/")): g.name for g in groups for p in g.paths}
    report = run_audit(list(components), targets=list(targets), policy=AuditPolicy(name="image", preload=preload),
                       sysroot=root, ld_library_path=library_path or None, component=components, env=inventory.env)
    data = _rewrite(report.to_dict(), root)
    seconds = time.monotonic() - start
    by_group: dict[str, list[dict]] = defaultdict(list)
    files_by_group: dict[str, list[dict]] = defaultdict(list)
    orphans = []
    for finding in data["findings"]:
        owner = _owner(finding["file"], groups)
        (by_group[owner.name] if owner else orphans).append(finding)
    for summary in data["files"]:
        owner = _owner(summary["path"], groups)
        if owner:
            files_by_group[owner.name].append(summary)
    share = seconds / max(1, len(groups))
    checks = [group_check(g, by_group[g.name], files_by_group[g.name], targets, share) for g in groups]
    if orphans:  # findings about the policy or the run itself, not one component's file
        errors = [f for f in orphans if f["severity"] == "error"]
        checks.append({"name": "audit:image", "category": "audit", "status": "fail" if errors else "pass",
                       "duration_s": 0.0, "component": None, "details": {"findings": orphans[:MAX_DETAILS]},
                       "evidence": "; ".join(_finding_line(f) for f in orphans[:MAX_LISTED])})
    return StaticAudit(checks, data.get("coverage"), groups, data.get("declared") or [], data.get("counts") or {})
