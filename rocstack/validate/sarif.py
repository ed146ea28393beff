"""Validation findings as SARIF 2.1.0, for code scanning and review tools.

One result per audit finding (rule ``rocstack/audit/<audit check>``), per TunableOp
Validator mismatch (``rocstack/tunableop/validator``) and per other failing or erroring
check (``rocstack/validate/<check kind>``: ``import``, ``torch-variant``, ``gpu-arch`` ...).
Rule ids never carry a component, file or image name, so they stay stable between runs.

Locations: for a component rocstack built, the recipe YAML at the line of the field to
edit (``validation.imports`` for an import, ``arches`` for arch coverage ...), relative to
the project root (``%SRCROOT%``); the file inside the image goes along as a related
location. For any other image, the file inside the image (``IMAGEROOT``, i.e. ``/``), and
for a TunableOp table its line. A check with no file gets a logical location (its name).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rocstack import __version__
from rocstack.validate.report import Report

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
HELP_URI = "https://github.com/rocstack/rocstack/blob/main/docs/validation.md"
LEVEL = {"fail": "error", "error": "error", "error-finding": "error", "warning": "warning"}
# the recipe field a finding of each kind is fixed in
FIELD = {"import": "validation.imports", "version": "version", "python": "validation.python_checks",
         "pytest": "validation.pytest", "perf": "validation.perf", "benchmark": "validation.benchmark",
         "audit/gpu-extension": "validation.gpu_extensions", "audit/required-symbols": "validation.required_symbols",
         "audit/unresolved-symbols": "validation.allowed_unresolved", "audit/symbol-versions": "validation.glibcxx_max",
         "audit/arch-coverage": "arches", "audit/missing-needed": "artifacts", "aot": "artifacts.files",
         "no-jit": "artifacts.files", "recipe": "name"}
DESCRIPTION = {
    "audit": "static audit finding in a shared library, code object or kernel database",
    "tunableop": "a TunableOp table whose Validator line does not match the image",
    "validate": "a validation check that failed or could not reach a result",
}


def check_kind(name: str) -> str:
    """``pytest:rocstack-kernels#2[gpu]`` -> ``pytest``; ``torch-variant`` -> ``torch-variant``."""
    return re.split(r"[:\[#]", name, maxsplit=1)[0]


def _image_location(path: str, line: int | None = None) -> dict:
    location = {"physicalLocation": {"artifactLocation": {"uri": path.split("!", 1)[0].lstrip("/"), "uriBaseId": "IMAGEROOT"}}}
    if line:
        location["physicalLocation"]["region"] = {"startLine": line}
    return location


class _Recipes:
    """Recipe files of this checkout, and the line of a field in each (read once)."""

    def __init__(self, project_root: Path | None):
        self.root = project_root
        self.lines: dict[tuple[str, str], int | None] = {}

    def location(self, component: str | None, kind: str) -> dict | None:
        """``kind``: a check kind (``import``) or ``audit/<audit check>``."""
        if not component or self.root is None:
            return None
        path = self.root / "recipes" / "components" / f"{component}.yaml"
        if not path.is_file():
            return None
        field = FIELD.get(kind, "name")
        key = (component, field)
        if key not in self.lines:
            from rocstack.recipes.loader import field_line

            self.lines[key] = field_line(path, field)
        return {"physicalLocation": {"artifactLocation": {"uri": f"recipes/components/{component}.yaml",
                                                          "uriBaseId": "%SRCROOT%"},
                                     "region": {"startLine": self.lines[key] or 1}}}


def _results(report: Report, recipes: _Recipes) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    built = report.data.get("mode") == "rocstack-image" or report.data.get("target") == "local"
    for check in report.checks:
        details = check.get("details") or {}
        findings = details.get("findings") or []
        kind = check_kind(check["name"])
        if kind == "tunableop":
            for finding in findings:
                rule = "rocstack/tunableop/validator"
                out.append((rule, {"level": LEVEL.get(finding["severity"], "note"), "message": {"text": finding["message"]},
                                   "locations": [_image_location(finding["file"], finding.get("line"))]}))
            continue
        if kind == "audit" and findings:
            for finding in findings:
                rule = f"rocstack/audit/{finding.get('check', 'finding')}"
                text = finding.get("message", "")
                if finding.get("hint"):
                    text += f" Fix: {finding['hint']}"
                file = str(finding.get("file") or "")
                image_loc = _image_location(file) if file.startswith("/") else None
                recipe_loc = recipes.location(check.get("component"), f"audit/{finding.get('check')}") if built else None
                locations = [loc for loc in (recipe_loc, image_loc) if loc][:1] or [_logical(check)]
                result = {"level": LEVEL.get(finding.get("severity"), "note"), "message": {"text": text},
                          "locations": locations}
                if recipe_loc and image_loc:
                    result["relatedLocations"] = [{"id": 1, **image_loc, "message": {"text": "the file inside the image"}}]
                out.append((rule, result))
            continue
        if check["status"] not in ("fail", "error"):
            continue
        rule = f"rocstack/validate/{kind}"
        location = recipes.location(check.get("component"), kind) if built else None
        out.append((rule, {"level": "error", "message": {"text": f"{check['name']}: {check['evidence'].strip()}"},
                           "locations": [location or _logical(check)]}))
    return out


def _logical(check: dict) -> dict:
    return {"logicalLocations": [{"name": check["name"], "kind": "module",
                                  "fullyQualifiedName": f"{check.get('component') or 'image'}/{check['name']}"}]}


def render_sarif(report: Report, project_root: Path | None = None) -> str:
    if project_root is None:
        project_root = _project_root()
    pairs = _results(report, _Recipes(project_root))
    rule_ids = sorted({rule for rule, _ in pairs})
    rules = [{"id": rule, "name": rule.split("/")[-1],
              "shortDescription": {"text": DESCRIPTION[rule.split("/")[1]] + f" ({rule.split('/')[-1]})"},
              "helpUri": HELP_URI} for rule in rule_ids]
    results = []
    for rule, result in pairs:
        results.append({"ruleId": rule, "ruleIndex": rule_ids.index(rule), **result})
    image = report.data.get("image") or {}
    run = {
        "tool": {"driver": {"name": "rocstack", "version": __version__, "informationUri": HELP_URI, "rules": rules}},
        "originalUriBaseIds": {
            "IMAGEROOT": {"uri": "file:///", "description": {"text": f"the root filesystem of {report.title}"}},
            "%SRCROOT%": {"description": {"text": "the rocstack project root (recipes)"}},
        },
        "results": results,
        "properties": {"verdict": report.verdict, "level": report.level, "image": image.get("id"),
                       "reference": report.data.get("reference")},
    }
    return json.dumps({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def _project_root() -> Path | None:
    try:
        from rocstack.recipes import project_root

        return project_root()
    except Exception:  # noqa: BLE001 - no checkout: results keep their image locations
        return None
