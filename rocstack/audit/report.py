"""Audit results: findings, per-file summaries and the ``rocstack.audit/v1`` JSON document.

JSON schema ``rocstack.audit/v1``::

    {schema, rocstack_version, created, sysroot, policy, targets: [target id],
     verdict: "pass" | "fail" | "error", exit_code: 0 | 1 | 2,
     checks: {check name: "ran" | "skipped: <reason>"},
     counts: {"error": n, "warning": n, "info": n},
     files: [{path, kind, size, soname, needed, rpath, runpath, versions_needed: {family: newest},
              fatbin: {section_size, wrappers, bundles: [...], targets: [...]} | null,
                      (kpack-split: {split: "kpack", wrappers: [HIPK|HIPF|0x...], keys, kernel_name,
                                     search_paths, targets: [what its installed archives hold], ...})
              code_objects: [{where, processor, target_id, mach, code_object_version, generic_version, size,
                              kernels: [{name, vgprs, agprs, sgprs, vgpr_spills, sgpr_spills,
                                         lds_bytes, scratch_bytes, wavefront_size,
                                         max_flat_workgroup_size, dynamic_stack, occupancy}],
                              problems: [...]}]}],
     coverage: {arches: [target id], rows: [...], components: [...]},   (docs/audit.md)
     declared: [{package, version, source, arches, unknown, delivered, missing, undeclared}],
     findings: [{check, severity, file, message, evidence, hint}]}

File kinds: shared-object, executable, code-object, offload-bundle, kernel-database,
kpack-archive, other-elf, unreadable.

Exit code: 2 when a file could not be read (I/O error), else 1 when any finding
is at error level, else 0.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from rocstack import __version__

if TYPE_CHECKING:  # the device-code modules load only when an audit meets device code
    from rocstack.audit.codeobject import CodeObject

SCHEMA = "rocstack.audit/v1"
EMPTY_COVERAGE = {"arches": [], "rows": [], "components": []}  # the coverage of an audit that met no device code
Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

# Check names (stable: they are part of the JSON schema).
CHECK_INPUT = "input"  # the file could not be read or is not a well-formed object
CHECK_IO = "io"  # the file could not be read at all (exit code 2)
CHECK_NEEDED = "missing-needed"
CHECK_UNRESOLVED = "unresolved-symbols"
CHECK_REQUIRED = "required-symbols"
CHECK_VERSIONS = "symbol-versions"
CHECK_RPATH = "rpath"
CHECK_FATBIN = "hip-fatbin"
CHECK_ARCH = "arch-coverage"
CHECK_GPU_EXT = "gpu-extension"
CHECK_CODE_OBJECT = "code-object"
CHECK_PRELOAD = "preload"
CHECK_DECLARED = "declared-arches"  # what packages declare against what they ship
ALL_CHECKS = (CHECK_INPUT, CHECK_NEEDED, CHECK_UNRESOLVED, CHECK_REQUIRED, CHECK_VERSIONS, CHECK_RPATH,
              CHECK_FATBIN, CHECK_ARCH, CHECK_GPU_EXT, CHECK_CODE_OBJECT, CHECK_PRELOAD, CHECK_DECLARED)


@dataclass
class Finding:
    check: str
    severity: Severity
    file: str
    message: str
    evidence: str = ""
    hint: str = ""


@dataclass
class FileSummary:
    path: str
    kind: str  # "shared-object", "executable", "code-object", "other-elf", "unreadable"
    size: int = 0
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    versions_needed: dict[str, str] = field(default_factory=dict)
    fatbin: dict | None = None
    code_objects: list[CodeObject] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "code_objects"}
        data["code_objects"] = [c.to_dict() for c in self.code_objects]
        return data


@dataclass
class AuditReport:
    sysroot: str
    policy: str
    targets: list[str]
    files: list[FileSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)
    coverage: object = None  # coverage.Matrix (to_dict()), set by run_audit
    declared: list[dict] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def add(self, check: str, severity: Severity, file: str, message: str, evidence: str = "", hint: str = "") -> None:
        self.findings.append(Finding(check, severity, file, message, evidence, hint))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        if any(f.check == CHECK_IO for f in self.findings):
            return 2
        return 1 if self.count("error") else 0

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "fail", 2: "error"}[self.exit_code]

    def findings_for(self, path: str) -> list[Finding]:
        return [f for f in self.findings if f.file == path]

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "rocstack_version": __version__,
            "created": self.created,
            "sysroot": self.sysroot,
            "policy": self.policy,
            "targets": self.targets,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "checks": self.checks,
            "counts": {s: self.count(s) for s in SEVERITIES},
            "files": [f.to_dict() for f in self.files],
            "coverage": self.coverage.to_dict() if self.coverage is not None else EMPTY_COVERAGE,
            "declared": self.declared,
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
