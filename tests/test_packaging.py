"""Packaging facts (issue 21 item 8): run-time dependencies are the ones run-time code imports,
and every package-data pattern names files that exist."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# distribution name -> the module it provides
MODULES = {"pyelftools": "elftools", "ruamel.yaml": "ruamel", "invoke": "invoke", "pydantic": "pydantic",
           "jinja2": "jinja2", "packaging": "packaging", "docker": "docker", "requests": "requests", "rich": "rich",
           "msgpack": "msgpack", "zstandard": "zstandard", "cryptography": "cryptography", "matplotlib": "matplotlib"}


def _imported_modules(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def _name(requirement: str) -> str:
    return requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()


def test_every_run_time_dependency_is_imported_by_the_package():
    imported = _imported_modules(REPO / "rocstack")
    for requirement in PYPROJECT["project"]["dependencies"]:
        module = MODULES[_name(requirement)]
        assert module in imported, f"{requirement} is a run-time dependency but nothing in rocstack/ imports {module}"


def test_pyelftools_is_for_tests_only():
    assert "elftools" not in _imported_modules(REPO / "rocstack")
    assert not any(_name(r) == "pyelftools" for r in PYPROJECT["project"]["dependencies"])
    assert any(_name(r) == "pyelftools" for r in PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_package_data_patterns_match_files():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((REPO / package).glob(pattern)), f"package data {package}/{pattern} matches no file"
