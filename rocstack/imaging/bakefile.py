"""A build matrix (stacks x arch sets) as a ``docker buildx bake`` file, in buildx's JSON schema.

One target per stack and arch set: its rendered Dockerfile (``dockerfile-inline``, so the
file is self-contained and golden-testable), the stack's staged context, the pip settings
as secrets, the image labels, and a registry build cache keyed on what decides the cached
layers (stack, arch set, component pins, torch/triton/base). Two variables let people
re-point the file without regenerating it: ``ROCSTACK_IMAGE_PREFIX`` (image names) and
``ROCSTACK_CACHE_REPO`` (the cache registry); buildx takes a variable's value from the
environment variable of the same name, and ``rocstack bake --set NAME=VALUE`` writes a
new default. Pure functions over resolved data: nothing here touches an engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rocstack.arches import arches_slug
from rocstack.recipes.catalog import Selection
from rocstack.render import base_reference, image_labels, source_refs

PREFIX_VARIABLE = "ROCSTACK_IMAGE_PREFIX"
CACHE_VARIABLE = "ROCSTACK_CACHE_REPO"
VARIABLES = (PREFIX_VARIABLE, CACHE_VARIABLE)
RUNTIME_STAGE = "runtime"
KEY_LENGTH = 16


@dataclass(frozen=True)
class Secrets:
    """Files buildx mounts as BuildKit secrets (the host pip's settings)."""

    pip_conf: Path
    pip_cert: Path | None

    def specs(self) -> list[str]:
        specs = [f"id=pip_conf,src={self.pip_conf}"]
        if self.pip_cert:
            specs.append(f"id=pip_cert,src={self.pip_cert}")
        return specs


@dataclass(frozen=True)
class MatrixEntry:
    """One stack x arch set, resolved and rendered."""

    selection: Selection
    dockerfile: str
    context: Path

    @property
    def name(self) -> str:
        """Bake target names allow [a-zA-Z0-9_-]: ``local-gfx90a_gfx942``."""
        return f"{self.selection.stack.name}-{arches_slug(self.selection.targets)}".replace(".", "_")

    @property
    def repository(self) -> str:
        return f"${{{PREFIX_VARIABLE}}}/{self.selection.stack.name}"


def cache_key(selection: Selection) -> str:
    """What decides the cached layers: stack, arch set, component pins, torch, triton and the base."""
    stack = selection.stack
    document = {
        "stack": stack.name,
        "arches": [str(t) for t in selection.targets],
        "components": source_refs(selection),
        "torch": [stack.torch.version, stack.torch.variant, stack.torch.index_url],
        "triton": stack.triton,
        "base": base_reference(selection),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:KEY_LENGTH]


def cache_ref(entry: MatrixEntry) -> str:
    return f"${{{CACHE_VARIABLE}}}:{entry.name}-{cache_key(entry.selection)}"


def _hcl_text(text: str) -> str:
    """buildx reads JSON strings as HCL templates: ``${`` and ``%{`` must be escaped to stay literal."""
    return text.replace("${", "$${").replace("%{", "%%{")


def bake_target(entry: MatrixEntry, secrets: Secrets, cache: bool, for_run: bool) -> dict:
    target = {
        "context": str(entry.context),
        "dockerfile-inline": _hcl_text(entry.dockerfile),
        "target": RUNTIME_STAGE,
        "labels": {key: _hcl_text(value) for key, value in sorted(image_labels(entry.selection).items())},
        "secret": secrets.specs(),
    }
    if not for_run:
        # `rocstack bake --run` tags only after the manifest is added, and only images that built
        target["tags"] = [f"{entry.repository}:{arches_slug(entry.selection.targets)}-latest"]
    if cache:
        ref = cache_ref(entry)
        target["cache-from"] = [f"type=registry,ref={ref}"]
        target["cache-to"] = [f"type=registry,ref={ref},mode=max"]
    if for_run:
        target["output"] = ["type=docker"]
    return target


def bake_document(entries: list[MatrixEntry], secrets: Secrets, variables: dict[str, str], for_run: bool = False) -> dict:
    """The bake file: variables, a default group of every target, the targets (sorted keys)."""
    cache = bool(variables.get(CACHE_VARIABLE))
    return {
        "variable": {name: {"default": variables.get(name, "")} for name in VARIABLES},
        "group": {"default": {"targets": [e.name for e in entries]}},
        "target": {e.name: bake_target(e, secrets, cache, for_run) for e in entries},
    }


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
