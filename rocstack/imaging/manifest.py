"""The build manifest (schema ``rocstack.build-manifest/v1``) and the image that carries it.

The manifest records per-stage durations, which are only known once the
BuildKit build has finished, so it is added by a final one-layer build on top
of the runtime image: ``/opt/rocstack/manifest.json`` plus the
``io.rocstack.manifest`` label. Tags are applied only after that succeeds.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from dataclasses import dataclass
from typing import TextIO

import docker
from docker.errors import APIError, BuildError, ContainerError

from rocstack.contracts import BUILD_MANIFEST_SCHEMA, BUILD_MARKERS_PATH, LABEL_MANIFEST, MANIFEST_PATH, compact_json
from rocstack.imaging.context import StagedContext
from rocstack.errors import EngineError
from rocstack.recipes.catalog import Selection


# Runs inside the runtime image: versions of what it holds (without importing torch), and
# the marker each builder stage left (rocstack-jobs: what it decided for MAX_JOBS).
_FACTS_SCRIPT = """
import glob, json, os, platform, sys
from importlib import metadata
tools = {"python": platform.python_version()}
for dist in ("pip", "torch", "triton", "rocstack", "rocstack-kernels", "rocstack-validation"):
    try:
        tools[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
built = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    with open(path) as handle:
        built[os.path.basename(path)[:-5]] = json.load(handle)
print(json.dumps({"tools": tools, "built": built}))
"""


@dataclass(frozen=True)
class ImageContents:
    tools: dict  # distribution -> version
    built: dict  # component -> its builder's marker (max_jobs, nproc, mem_available_kb, ...)


def image_contents(client: docker.DockerClient, image_id: str) -> ImageContents:
    """Tool versions and builder markers, read from a container of the image."""
    try:
        out = client.containers.run(image_id, ["python", "-c", _FACTS_SCRIPT, BUILD_MARKERS_PATH],
                                    remove=True, network_disabled=True)
    except ContainerError as exc:
        raise EngineError(f"cannot read tool versions from image {image_id[:19]}: {exc.stderr!r}", "see the build log") from None
    facts = json.loads(out.decode().strip().splitlines()[-1])
    return ImageContents(facts["tools"], facts["built"])


def check_all_built(selection: Selection, built: dict) -> None:
    """Every component of the stack left its marker in the image, or the image is not what its labels say."""
    missing = [r.name for r in selection.components if r.name not in built]
    if missing:
        raise EngineError(
            f"component(s) {', '.join(missing)} of stack {selection.stack.name} were not built "
            f"(no marker in {BUILD_MARKERS_PATH} of the runtime image)",
            "a template that overrides the runtime block must keep the COPY of each builder's /out/rocstack-build/",
        )


def build_manifest(
    selection: Selection,
    context: StagedContext,
    base_image_id: str,
    tools: dict[str, str],
    stages: dict[str, float],
    refs: dict[str, str],
    built: dict[str, dict] | None = None,
    created: str | None = None,
) -> dict:
    """``refs``: component name -> source ref, as the rendered io.rocstack.components label says;
    ``built``: component name -> its builder's marker (``image_contents``)."""
    built = built or {}
    components = []
    for recipe in selection.components:
        local = recipe.source.kind == "local"
        components.append({
            "name": recipe.name,
            "version": recipe.version,
            "ref": refs.get(recipe.name),
            # Local sources are hashed file by file; git and PyPI sources are pinned by ref/version.
            "source_sha256": context.digest(f"sources/{recipe.name}") if local else None,
            # decided inside the builder when the stage ran (None: the stage left no marker)
            "max_jobs": (built.get(recipe.name) or {}).get("max_jobs"),
        })
        ledger = (built.get(recipe.name) or {}).get("ledger")
        if ledger is not None:
            # the effective-arch ledger (rocstack.imaging.ledger): what the outputs carry, per file
            components[-1]["effective_arches"] = ledger.get("effective")
            components[-1]["ledger"] = ledger
    return {
        "schema": BUILD_MANIFEST_SCHEMA,
        "stack": selection.stack.name,
        "arches": [str(t) for t in selection.targets],
        "components": components,
        "base_image_id": base_image_id,
        "tools": tools,
        "stages": stages,
        "builders": {name: built[name] for name in sorted(built)},
        "created": created or utc_now(),
    }


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _context_tar(runtime_id: str, manifest: dict) -> io.BytesIO:
    dockerfile = f"FROM {runtime_id}\nCOPY manifest.json {MANIFEST_PATH}\n".encode()
    payload = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("manifest.json", payload)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def add_manifest(
    client: docker.DockerClient, runtime_id: str, manifest: dict, labels: dict[str, str], log: TextIO
) -> str:
    """Build ``runtime_id`` + manifest file + labels (engine API, no BuildKit needed); returns the image id."""
    all_labels = {**labels, LABEL_MANIFEST: compact_json(manifest)}
    try:
        stream = client.api.build(
            fileobj=_context_tar(runtime_id, manifest), custom_context=True, labels=all_labels,
            rm=True, forcerm=True, decode=True,
        )
        image_id = None
        for chunk in stream:
            if "stream" in chunk:
                log.write(chunk["stream"])
            if "error" in chunk:
                raise BuildError(chunk["error"], [])
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except (APIError, BuildError) as exc:
        raise EngineError(f"adding the build manifest to {runtime_id[:19]} failed: {exc}", "see the build log") from None
    if not image_id:
        raise EngineError("the engine did not report the id of the manifest image", "see the build log")
    return image_id
