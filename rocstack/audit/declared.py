"""Declared vs delivered: the GPU arches a package says it supports against the code it ships.

Declarations read:

- Debian: the control field ``X-Rocm-Gpu-Architecture`` (space-separated arches or
  generic targets), from a ``.deb``'s control file or, for installed packages, from
  ``/var/lib/dpkg/status`` with the package's files from ``/var/lib/dpkg/info/<pkg>.list``;
- Python wheels: ``METADATA`` requirements and extras naming TheRock device packages
  (``rocm-sdk-device-<T>``, ``amd-torch-device-<T>``, extra ``device-<T>``), ``<T>`` an
  arch or a family (``gfx94X-dcgpu``), with the files from ``RECORD`` when installed.

Delivered: the targets of every coverage-matrix unit read from the package's files (for a
kpack-split library, the targets its installed archives hold for it).
A declared arch with no code is an error (users pick packages by that list and get
``hipErrorNoBinaryForGpu``); code for an undeclared arch is a warning (stale metadata).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rocstack.arches import generic_targets, therock_family
from rocstack.audit.report import CHECK_DECLARED, AuditReport

if TYPE_CHECKING:  # validate reads dpkg's status through this module without the device-code model
    from rocstack.audit.devicecode import DeviceRow

DEBIAN_FIELD = "X-Rocm-Gpu-Architecture"
_DEVICE_REQUIREMENT = re.compile(r"^(?:rocm-sdk-device|amd-torch-device)-(?P<target>[A-Za-z0-9][A-Za-z0-9-]*)$", re.I)
_DEVICE_EXTRA = re.compile(r"^device-(?P<target>(?!all$)[A-Za-z0-9][A-Za-z0-9-]*)$", re.I)


@dataclass
class Declaration:
    package: str
    version: str
    source: str  # "deb-control", "dpkg-status", "wheel-metadata"
    arches: list[str]  # as declared: arches and generic targets
    files: set[str] = field(default_factory=set)  # real paths (or labels) of the package's files
    unknown: list[str] = field(default_factory=list)  # declared names rocstack cannot map to arches

    def to_dict(self) -> dict:
        return {"package": self.package, "version": self.version, "source": self.source, "arches": self.arches,
                "unknown": self.unknown}


def parse_control(text: str) -> dict[str, str]:
    """One deb822 paragraph (a control file, or one stanza of dpkg's status file)."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    return fields


def from_control(fields: dict[str, str], source: str) -> Declaration | None:
    value = fields.get(DEBIAN_FIELD)
    if value is None:
        return None
    return Declaration(fields.get("Package", "?"), fields.get("Version", "?"), source, value.split())


def dpkg_status(root: str | os.PathLike, wanted: str | None = None) -> list[dict[str, str]]:
    """The stanzas of a root filesystem's ``/var/lib/dpkg/status`` (only those holding ``wanted``, if given)."""
    try:
        with open(os.path.join(root, "var/lib/dpkg/status"), encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    stanzas = (parse_control(stanza) for stanza in text.split("\n\n") if wanted is None or wanted in stanza)
    return [fields for fields in stanzas if fields.get("Package")]


def dpkg_state(fields: dict[str, str]) -> str:
    """``install ok installed`` -> ``installed``: the last word of ``Status`` is the package's state."""
    words = fields.get("Status", "").split()
    return words[-1] if words else ""


def dpkg_files(root: str | os.PathLike, fields: dict[str, str]) -> list[str] | None:
    """The package's files (paths inside ``root``) from ``/var/lib/dpkg/info/<pkg>[:arch].list``; None without one."""
    package, arch = fields.get("Package", ""), fields.get("Architecture", "")
    for name in (f"{package}:{arch}.list", f"{package}.list"):
        try:
            with open(os.path.join(root, "var/lib/dpkg/info", name), encoding="utf-8", errors="replace") as handle:
                return [line.strip() for line in handle if line.strip() and line.strip() != "/."]
        except OSError:
            continue
    return None


def from_dpkg(root: str) -> list[Declaration]:
    """Installed packages that declare GPU arches, with their files (host paths under ``root``)."""
    out = []
    for fields in dpkg_status(root, DEBIAN_FIELD):
        declaration = from_control(fields, "dpkg-status")
        if declaration is None or dpkg_state(fields) in ("not-installed", "config-files"):
            continue  # only packages whose files are on disk
        declaration.files = {os.path.realpath(os.path.join(root, line.lstrip("/")))
                             for line in dpkg_files(root, fields) or []}
        out.append(declaration)
    return out


def from_wheel_metadata(text: str, source: str = "wheel-metadata") -> Declaration | None:
    """TheRock-style device requirements/extras in a wheel's METADATA; None when it names none."""
    from email.parser import HeaderParser  # only wheels need it: keep the audit's start-up short

    meta = HeaderParser().parsestr(text)
    targets: list[str] = []
    for requirement in meta.get_all("Requires-Dist") or []:
        name = re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0]
        match = _DEVICE_REQUIREMENT.match(name)
        if match and match["target"] not in targets:
            targets.append(match["target"])
    for extra in meta.get_all("Provides-Extra") or []:
        match = _DEVICE_EXTRA.match(extra.strip())
        if match and match["target"] not in targets:
            targets.append(match["target"])
    if not targets:
        return None
    return Declaration(meta.get("Name", "?"), meta.get("Version", "?"), source, targets)


def expand(declared: list[str]) -> tuple[set[str], list[str]]:
    """Declared names -> (arches and generic targets they stand for, names rocstack does not know)."""
    out: set[str] = set()
    unknown = []
    for name in declared:
        if name in generic_targets():
            out.add(name)
            continue
        family = therock_family(name)
        if family is None:
            unknown.append(name)
        else:
            out.update(family)
    return out, unknown


def compare(report: AuditReport, declarations: list[Declaration], rows: list[DeviceRow], files_of_row) -> list[dict]:
    """Findings and the ``declared`` section of the report; ``files_of_row(row)`` -> real paths of its files."""
    from rocstack.audit.devicecode import KPACK

    section = []
    for declaration in declarations:
        mine = [row for row in rows if files_of_row(row) & declaration.files]
        entry = declaration.to_dict()
        declared, declaration.unknown = expand(declaration.arches)
        entry["unknown"] = declaration.unknown
        label = f"{declaration.package} {declaration.version}"
        if not mine or all(u.source == KPACK and not u.targets for row in mine for u in row.units):
            entry.update(delivered=None, missing=[], undeclared=[])
            section.append(entry)
            report.add(CHECK_DECLARED, "info", label,
                       f"declares {', '.join(declaration.arches)} but ships no device code this audit can read "
                       "(it may load its kernels from another package)", evidence=f"from {declaration.source}")
            continue
        delivered = {t.split(":")[0] for row in mine for u in row.units for t in u.targets}
        via_generic = {m for g in delivered if g in generic_targets() for m in generic_targets()[g].members}
        missing = sorted(a for a in declared if a not in delivered and a not in via_generic)
        undeclared = sorted(a for a in delivered if a not in declared
                            and not (a in generic_targets() and set(generic_targets()[a].members) & declared))
        entry.update(delivered=sorted(delivered), missing=missing, undeclared=undeclared)
        section.append(entry)
        if missing:
            report.add(CHECK_DECLARED, "error", label,
                       f"declares {', '.join(missing)} but ships no code for {'it' if len(missing) == 1 else 'them'}: "
                       "a GPU chosen by this list fails with hipErrorNoBinaryForGpu",
                       evidence=f"{declaration.source} declares {' '.join(declaration.arches)}; "
                                f"delivered: {', '.join(sorted(delivered))}",
                       hint="fix the package: build the missing arches or drop them from its declaration")
        if undeclared:
            report.add(CHECK_DECLARED, "warning", label,
                       f"ships code for {', '.join(undeclared)}, which it does not declare",
                       evidence=f"{declaration.source} declares {' '.join(declaration.arches)}",
                       hint="update the package's arch declaration so users can find it")
        if declaration.unknown:
            report.add(CHECK_DECLARED, "warning", label,
                       f"declares names rocstack cannot map to arches: {', '.join(declaration.unknown)}",
                       hint="a newer rocstack may know them; check the package's documentation")
    return section
