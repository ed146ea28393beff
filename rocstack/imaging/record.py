"""Record a finished BuildKit build as a rocstack image: manifest layer, labels, then tags.

Shared by ``build`` (one image) and ``bake --run`` (one per target): the runtime image
BuildKit made gets the build manifest (``/opt/rocstack/manifest.json`` + label), the
time- and checkout-dependent OCI labels, and only then the two tags. A rebuild whose
runtime image is unchanged reuses the manifest image it made before (same id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TextIO

from rocstack.contracts import LABEL_CONTENT_HASH, LABEL_MANIFEST, LABEL_RUNTIME_IMAGE
from rocstack.engine import find_by_label
from rocstack.errors import EngineError
from rocstack.imaging.context import StagedContext
from rocstack.imaging.identity import ImageName
from rocstack.imaging.manifest import add_manifest, build_manifest, check_all_built, image_contents, utc_now
from rocstack.imaging.provenance import base_labels, oci_labels
from rocstack.log import Log
from rocstack.recipes.catalog import Selection
from rocstack.render import base_reference, source_refs


@dataclass(frozen=True)
class BuildInputs:
    """What one image was built from: selection, staged context, base, and the name they give."""

    selection: Selection
    staged: StagedContext
    base_id: str
    base_info: dict  # tag, image_id, repo_digests (what is known of the base)
    digest: str  # content hash
    name: ImageName


@dataclass(frozen=True)
class Recorded:
    image_id: str
    manifest: dict
    reused: bool


def record_image(client, inputs: BuildInputs, runtime_id: str, stage_seconds: dict[str, float],
                 cli_version: str, log: Log, build_log: TextIO) -> Recorded:
    """Manifest image (or the existing one for a no-op rebuild), then both tags."""
    name = inputs.name
    existing = find_by_label(client, name.versioned, LABEL_RUNTIME_IMAGE, runtime_id)
    if existing:
        manifest = json.loads(client.images.get(existing).labels[LABEL_MANIFEST])
        log.step(f"no change: {name.versioned} already is this build")
        image_id = existing
    else:
        log.step(f"adding the build manifest to {name.versioned}")
        contents = image_contents(client, runtime_id)
        check_all_built(inputs.selection, contents.built)
        tools = {**contents.tools, "docker-engine": client.version().get("Version", "?"), "docker-cli": cli_version}
        created = utc_now()
        manifest = build_manifest(inputs.selection, inputs.staged, inputs.base_id, tools, stage_seconds,
                                  source_refs(inputs.selection), built=contents.built, created=created)
        base = base_labels(base_reference(inputs.selection), inputs.base_info.get("repo_digests") or (),
                           inputs.base_info.get("image_id"))
        labels = {LABEL_CONTENT_HASH: inputs.digest, LABEL_RUNTIME_IMAGE: runtime_id,
                  **oci_labels(inputs.selection.catalog.root, created, base)}
        image_id = add_manifest(client, runtime_id, manifest, labels, build_log)
    image = client.images.get(image_id)
    for tag in (name.versioned, name.latest):
        repository, _, version = tag.rpartition(":")
        if not image.tag(repository, version):
            raise EngineError(f"the engine refused to tag {image_id[:19]} as {tag}", "see the engine log")
    build_log.write(f"== rocstack: built {image_id} as {name.versioned} and {name.latest}\n")
    return Recorded(image_id, manifest, bool(existing))
