"""TunableOp tables shipped in an image, checked against the image before a GPU ever reads them.

PyTorch's TunableOp (ROCm) reads ``PYTORCH_TUNABLEOP_FILENAME`` (default
``tunableop_results.csv``, relative to the working directory) with the device ordinal
inserted before the last ``.`` (or in place of ``%d``): ``tunableop_results0.csv``.
Its ``Validator,<KEY>,<value>`` lines must all match what the running torch was built
with, key for key; one mismatch and the whole file is ignored (then re-tuned, or the
untuned default runs). Keys and formats (PyTorch ``aten/src/ATen/cuda/tunable``):
``PT_VERSION`` (torch's ``X.Y.Z``), ``ROCM_VERSION`` (rocm-core's ``ROCM_BUILD_INFO``,
``6.0.0.0-12969-1544e39``), ``ROCBLAS_VERSION`` (``4.0.0-72e57364``),
``HIPBLASLT_VERSION`` (``0.6.0-a9c5cc7``, newer torch ``800-3c8f0c9``: major*100000 +
minor*100 + patch), ``GCN_ARCH_NAME`` (the device's full target ID).

Each line is compared with what the image states statically (:mod:`inventory`) and the
target arches; each mismatch is a finding naming the file and line.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.arches import TargetID, parse_target_id
from rocstack.errors import ArchError
from rocstack.validate.inventory import Version

FILENAME_ENV = "PYTORCH_TUNABLEOP_FILENAME"
DEFAULT_NAME = "tunableop_results.csv"
MANDATORY = "PT_VERSION"
ROCM_KEYS = ("ROCM_VERSION", "GCN_ARCH_NAME", "ROCBLAS_VERSION", "HIPBLASLT_VERSION")
_NUMBERS = re.compile(r"^\d+(?:\.\d+)*")


def name_patterns(env: dict[str, str], workdir: str | None) -> tuple[str, ...]:
    """Patterns (inside the image, no leading /) of the files torch would read, from the image's env."""
    name = env.get(FILENAME_ENV) or DEFAULT_NAME
    if not name.startswith("/"):
        name = f"{(workdir or '/').rstrip('/')}/{name}"
    name = name.lstrip("/")
    if "%d" in name:
        return (name.replace("%d", "*"),)
    head, dot, tail = name.rpartition(".")
    return (f"{head}*.{tail}",) if dot and "/" not in tail else (name + "*",)


def find_tables(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """Table files (paths inside the image): ``tunableop_results*.csv`` anywhere, and what the env names."""
    found = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            inside = os.path.relpath(os.path.join(folder, name), root)
            if fnmatch.fnmatchcase(name, "tunableop_results*.csv") or any(fnmatch.fnmatchcase(inside, p) for p in patterns):
                if os.path.isfile(os.path.join(folder, name)):
                    found.append("/" + inside)
    return sorted(found)


@dataclass
class Line:
    number: int
    key: str
    value: str


@dataclass
class TableFinding:
    severity: str  # "error" | "warning"
    file: str
    line: int | None
    key: str | None
    message: str

    def to_json(self) -> dict:
        return {"check": "tunableop", "severity": self.severity, "file": self.file, "line": self.line,
                "key": self.key, "message": self.message}


@dataclass
class TableResult:
    file: str
    validators: list[Line]
    results: int  # tuned solutions in the file
    findings: list[TableFinding] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # keys that matched the image

    @property
    def status(self) -> str:
        if any(f.severity == "error" for f in self.findings):
            return "fail"
        return "pass" if self.verified else "skip"


def parse_table(text: str) -> tuple[list[Line], int]:
    validators, results = [], 0
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.strip().split(",")
        if parts[0] == "Validator" and len(parts) >= 3:
            validators.append(Line(number, parts[1].strip(), parts[2].strip()))
        elif len(parts) >= 3:
            results += 1
    return validators, results


def _numbers(text: str) -> list[int]:
    match = _NUMBERS.match(text.strip())
    return [int(n) for n in match.group(0).split(".")] if match else []


def hipblaslt_numbers(value: str) -> list[int]:
    """``0.6.0-a9c5cc7`` -> [0, 6, 0]; ``800-3c8f0c9`` (one integer) -> [0, 8, 0]."""
    head = value.split("-", 1)[0]
    if head.isdigit() and "." not in head and int(head) >= 100:
        number = int(head)
        return [number // 100000, number // 100 % 1000, number % 100]
    return _numbers(value)


def compare_versions(table: list[int], image: list[int]) -> bool | None:
    """Equal on the components both state (at least two); None when either states fewer."""
    common = min(len(table), len(image))
    if common < 2:
        return None
    return table[:common] == image[:common]


def _version_line(result: TableResult, line: Line, what: str, image: Version | None, table_numbers: list[int],
                  image_numbers: list[int] | None = None) -> None:
    if image is None:
        result.findings.append(TableFinding("warning", result.file, line.number, line.key,
                                            f"{line.key} {line.value} cannot be checked: the image states no {what} version"))
        return
    same = compare_versions(table_numbers, image_numbers if image_numbers is not None else _numbers(image.value))
    if same is None:
        result.findings.append(TableFinding("warning", result.file, line.number, line.key,
                                            f"{line.key} {line.value} cannot be compared with {what} {image.value} ({image.source})"))
    elif not same:
        result.findings.append(TableFinding(
            "error", result.file, line.number, line.key,
            f"line {line.number}: Validator {line.key} is {line.value} but the image has {what} {image.value} "
            f"({image.source}): torch rejects the whole table and tunes again (or runs untuned)"))
    else:
        result.verified.append(line.key)


def _arch_line(result: TableResult, line: Line, targets: list[TargetID]) -> None:
    try:
        device = parse_target_id(line.value, known_only=False)
    except ArchError:
        result.findings.append(TableFinding("error", result.file, line.number, line.key,
                                            f"line {line.number}: GCN_ARCH_NAME {line.value!r} is not a target ID"))
        return
    if not targets:
        result.findings.append(TableFinding("warning", result.file, line.number, line.key,
                                            f"GCN_ARCH_NAME {line.value} cannot be checked: no target arches"))
        return
    if any(t.processor == device.processor for t in targets):
        result.verified.append(line.key)
        return
    result.findings.append(TableFinding(
        "error", result.file, line.number, line.key,
        f"line {line.number}: Validator GCN_ARCH_NAME is {line.value} but the image targets "
        f"{', '.join(str(t) for t in targets)}: the table was tuned on another GPU and is rejected there"))


def check_table(file: str, text: str, versions: dict[str, Version | None], targets: list[TargetID]) -> TableResult:
    validators, results = parse_table(text)
    result = TableResult(file, validators, results)
    keys = {line.key for line in validators}
    if MANDATORY not in keys:
        result.findings.append(TableFinding("error", file, None, MANDATORY,
                                            "no Validator,PT_VERSION line: torch rejects a table without it"))
    for line in validators:
        if line.key == "PT_VERSION":
            if versions.get("torch") is None:
                result.findings.append(TableFinding("warning", file, line.number, line.key,
                                                    f"PT_VERSION {line.value}: no torch is installed to read this table"))
            else:
                _version_line(result, line, "torch", versions["torch"], _numbers(line.value))
        elif line.key == "ROCM_VERSION":
            _version_line(result, line, "ROCm", versions.get("rocm"), _numbers(line.value))
        elif line.key == "ROCBLAS_VERSION":
            _version_line(result, line, "rocBLAS", versions.get("rocblas"), _numbers(line.value))
        elif line.key == "HIPBLASLT_VERSION":
            _version_line(result, line, "hipBLASLt", versions.get("hipblaslt"), hipblaslt_numbers(line.value))
        elif line.key == "GCN_ARCH_NAME":
            _arch_line(result, line, targets)
        else:
            result.findings.append(TableFinding("warning", file, line.number, line.key,
                                                f"line {line.number}: Validator {line.key} is not one rocstack knows"))
    return result
