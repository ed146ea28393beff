"""Pin the registry base image of stacks by digest, and refresh those pins from the registry.

A tag moves (``rocm/dev-ubuntu-24.04:7.0-complete`` is rebuilt in place); a digest does not.
A stack's ``base: {image: TAG, digest: sha256:...}`` renders ``FROM TAG@sha256:...``, so the
build gets exactly the pinned image and the cache key and tags change only when the pin does.
``refresh_pins`` asks the registry (OCI distribution API, anonymous or Docker-config
credentials) what the tag points at now and rewrites the ``digest`` in the stack file,
keeping its comments and layout.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic
from rocstack.recipes.catalog import Catalog

DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True)
class ImageRef:
    host: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def parse_image(text: str) -> ImageRef:
    """``[HOST[:PORT]/]REPO[:TAG]`` as docker reads it (no host: Docker Hub, ``library/`` for one-word names)."""
    name, _, digest = text.partition("@")
    if digest:
        raise RocstackError(f"base.image {text} already carries a digest", "put the tag in base.image and the digest in base.digest")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, name if slash else f"library/{name}"
    last = path.rsplit("/", 1)[-1]
    repository, tag = (path.rsplit(":", 1) if ":" in last else (path, "latest"))
    return ImageRef(host, repository, tag)


def resolve_digest(image: str) -> str:
    """The manifest (or index) digest the registry serves for ``image``'s tag now."""
    from rocstack.registry.oci import RegistryClient, parse_registry

    ref = parse_image(image)
    client = RegistryClient(parse_registry(f"{ref.host}/{ref.repository}"))
    manifest = client.get_manifest(ref.repository, ref.tag)
    if manifest is None:
        raise RocstackError(f"registry {ref.host} has no {ref.repository}:{ref.tag}", "check base.image in the stack file")
    return manifest.digest


@dataclass(frozen=True)
class PinChange:
    stack: str
    image: str
    old: str | None
    new: str
    path: Path

    @property
    def changed(self) -> bool:
        return self.old != self.new


def _write_digest(path: Path, digest: str) -> None:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    document = yaml.load(path.read_text(encoding="utf-8"))
    document["base"]["digest"] = digest
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    write_atomic(path, buffer.getvalue())


def refresh_pins(catalog: Catalog, names: list[str] | None = None, check: bool = False) -> list[PinChange]:
    """Ask the registry for each stack's base digest; rewrite the stack file unless ``check``."""
    stacks = [catalog.stack(n) for n in names] if names else catalog.stacks()
    chosen = [s for s in stacks if s.base.image]
    if names and len(chosen) != len(stacks):
        local = ", ".join(s.name for s in stacks if not s.base.image)
        raise RocstackError(f"stack(s) {local} build their base locally (debootstrap): nothing to pin",
                            "pin only stacks whose base is a registry image")
    changes = []
    for stack in chosen:
        digest = resolve_digest(stack.base.image)
        path = catalog.stack_files[stack.name]
        change = PinChange(stack.name, stack.base.image, stack.base.digest, digest, path)
        if change.changed and not check:
            _write_digest(path, digest)
            catalog.stack(stack.name)  # the rewritten file still loads (and validates)
        changes.append(change)
    return changes
