"""Exchange formats defined once, and dependencies that run one way."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from rocstack.contracts import LABEL_ARCHES, LABEL_COMPONENTS, LABEL_MANIFEST, LABEL_STACK, parse_labels

REPO = Path(__file__).resolve().parents[1]


def test_labels_parse_once_for_local_and_remote_images():
    manifest = {"components": [{"name": "rocstack-kernels", "version": "0.1.0"}]}
    labels = parse_labels({LABEL_STACK: "local", LABEL_ARCHES: "gfx90a, gfx942:xnack-",
                           LABEL_COMPONENTS: json.dumps({"rocstack-kernels": "local:kernels@0.1.0"}),
                           LABEL_MANIFEST: json.dumps(manifest)})
    assert labels.built_by_rocstack and labels.stack == "local"
    assert labels.arches == ("gfx90a", "gfx942:xnack-")
    assert labels.components == {"rocstack-kernels": "local:kernels@0.1.0"}
    assert labels.manifest == manifest and labels.problems == ()


def test_foreign_and_corrupt_labels_are_told_apart():
    assert not parse_labels(None).built_by_rocstack
    assert not parse_labels({"org.opencontainers.image.title": "vendor"}).built_by_rocstack
    broken = parse_labels({LABEL_STACK: "local", LABEL_ARCHES: "gfx942", LABEL_MANIFEST: "{not json",
                           LABEL_COMPONENTS: "[1, 2]"})
    assert broken.manifest is None and broken.components == {}
    assert len(broken.problems) == 2 and any(LABEL_MANIFEST in p for p in broken.problems)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_rocstack_never_imports_the_packages_built_on_it():
    """kernels and validation depend on rocstack; rocstack reaches them only through entry points
    and processes, never by import (lazy imports included)."""
    offenders = []
    for path in sorted((REPO / "rocstack").rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in ("rocstack_kernels", "rocstack_validation"):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_the_command_starts_without_heavy_libraries():
    """Building the task collection (every `rocstack` call does) imports none of the heavy libraries:
    tasks import them in their bodies, so `rocstack audit` does not pay for docker or torch."""
    code = ("import sys; from rocstack.cli.collection import build_collection; build_collection(); "
            "heavy = ['docker', 'pydantic', 'jinja2', 'rich', 'matplotlib', 'torch', 'triton', 'cryptography', "
            "'requests']; print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
