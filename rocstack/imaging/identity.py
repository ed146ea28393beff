"""Deterministic image names: ``<prefix>/<stack>:<arches>-<content hash>`` and ``:<arches>-latest``.

The content hash covers everything that decides what the image holds: the
rendered Dockerfile, the stack and component recipe files, every file of the
build context (project, component sources, wheelhouse) and the base image id.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from rocstack.arches import arches_slug
from rocstack.imaging.context import StagedContext
from rocstack.errors import RocstackError
from rocstack.recipes.catalog import Selection

HASH_LENGTH = 12


def image_prefix() -> str:
    prefix = os.environ.get("ROCSTACK_IMAGE_PREFIX", "rocstack")
    if not prefix or prefix != prefix.lower() or any(c in prefix for c in ": @"):
        raise RocstackError(f"ROCSTACK_IMAGE_PREFIX '{prefix}' is not a valid repository prefix", "use lowercase, e.g. rocstack or registry.local/team")
    return prefix


def _file_sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipe_digests(selection: Selection) -> dict[str, str]:
    catalog = selection.catalog
    files = {f"stacks/{selection.stack.name}.yaml": catalog.stack_files[selection.stack.name]}
    for recipe in selection.components:
        files[f"components/{recipe.name}.yaml"] = catalog.component_files[recipe.name]
    return {name: _file_sha(path) for name, path in sorted(files.items())}


def content_hash(selection: Selection, dockerfile: str, context: StagedContext, base_image_id: str) -> str:
    document = {
        "dockerfile": hashlib.sha256(dockerfile.encode()).hexdigest(),
        "recipes": recipe_digests(selection),
        "context": context.digest(),
        "base_image_id": base_image_id,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ImageName:
    repository: str
    slug: str
    digest: str

    @property
    def versioned(self) -> str:
        return f"{self.repository}:{self.slug}-{self.digest[:HASH_LENGTH]}"

    @property
    def latest(self) -> str:
        return f"{self.repository}:{self.slug}-latest"


def image_name(selection: Selection, digest: str) -> ImageName:
    return ImageName(f"{image_prefix()}/{selection.stack.name}", arches_slug(selection.targets), digest)
