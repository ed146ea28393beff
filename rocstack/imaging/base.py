"""Base images made on this machine: debootstrap a Debian root, import it into the engine.

The `local` stack needs no registry: its base is a Debian root built by
debootstrap from Debian's own packages. The image is tagged by the lead's
``debootstrap_tag`` (a hash of suite/variant/packages, also rendered into the
Dockerfile) and labelled with a hash of *all* inputs (plus mirror and this
builder's own steps); an image whose label matches is reused, not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import docker
from docker.errors import APIError, ImageNotFound

from rocstack.contracts import LABEL_BASE_INPUTS, LABEL_STACK, logs_dir, rocstack_home
from rocstack.engine import find_by_label
from rocstack.errors import EngineError, RocstackError
from rocstack.fsutil import write_atomic
from rocstack.imaging.aptlayer import install_layer
from rocstack.recipes.basekey import debootstrap_inputs, debootstrap_tag
from rocstack.recipes.models import Stack

# Bump when the steps below change what ends up in the image. (Stacks without a toolchain layer
# keep their hash: the apt block joins the inputs only where a stack has one.)
BUILDER_REVISION = 1
IMAGE_CONFIG = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)
# Removed after debootstrap: downloaded .debs and package lists are not needed at run time.
PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass
class BaseImageResult:
    tag: str
    image_id: str
    inputs_hash: str
    reused: bool
    seconds: float


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The mirror debootstrap uses: $ROCSTACK_DEBIAN_MIRROR, else the host's apt sources."""
    chosen = os.environ.get("ROCSTACK_DEBIAN_MIRROR")
    if chosen:
        return chosen
    candidates = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(https?://\S+)", text):
            url = match.group(1).rstrip("/")
            if url.endswith("/debian"):
                return url
    return DEFAULT_MIRROR


def base_inputs(stack: Stack) -> dict:
    return {
        **debootstrap_inputs(stack),
        "mirror": debian_mirror(),
        "builder_revision": BUILDER_REVISION,
        "image_config": list(IMAGE_CONFIG),
        "prune": list(PRUNE),
    }


def inputs_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _prune(root: Path) -> None:
    for rel in PRUNE:
        target = root / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and child.name == "partial":
                    continue
                if child.is_file() or child.is_symlink():
                    child.unlink()


def _debootstrap(inputs: dict, root: Path, log_path: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise RocstackError("debootstrap is not installed", "apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise RocstackError("building the local base image needs root (debootstrap creates device nodes)", "run as root")
    cmd = [
        "debootstrap",
        f"--variant={inputs['variant']}",
        f"--include={','.join(inputs['include'])}",
        inputs["suite"],
        str(root),
        inputs["mirror"],
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-5:]
        raise RocstackError(
            f"debootstrap of {inputs['suite']} from {inputs['mirror']} failed (exit {result.returncode}): "
            + " | ".join(tail),
            f"check the mirror (ROCSTACK_DEBIAN_MIRROR) and the package list; full log: {log_path}",
        )


def _import(client: docker.DockerClient, root: Path, tag: str, labels: dict[str, str]) -> str:
    """Stream ``tar`` of ``root`` into the engine as ``tag``; returns the image id."""
    repository, _, version = tag.rpartition(":")
    changes = [*IMAGE_CONFIG, *(f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items()))]
    tar = subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-cf", "-", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        answer = client.api.import_image(src=tar.stdout, repository=repository, tag=version, changes=changes, stream_src=True)
    except APIError as exc:
        tar.kill()
        raise EngineError(f"the engine refused to import the base image {tag}: {exc.explanation}", "see the engine log") from None
    finally:
        tar.wait()
    if tar.returncode != 0:
        raise RocstackError(f"tar of {root} failed: {tar.stderr.read().decode(errors='replace').strip()[:200]}", "check free disk space")
    for line in str(answer).splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "errorDetail" in message or "error" in message:
            raise EngineError(f"importing the base image {tag} failed: {message.get('error')}", "see the engine log")
    return client.images.get(tag).id


def require_local_base(stack: Stack) -> None:
    if stack.base.debootstrap is None:
        raise RocstackError(
            f"stack {stack.name} uses the registry image {stack.base.image}, not a locally built base",
            "only stacks with base.debootstrap are built by `rocstack base`",
        )


def ensure_base(
    client: docker.DockerClient,
    stack: Stack,
    *,
    force: bool = False,
    say: Callable[[str], None] = lambda text: None,
) -> BaseImageResult:
    """The stack's debootstrap base image: reused when its inputs are unchanged, else built and imported."""
    require_local_base(stack)
    inputs = base_inputs(stack)
    wanted = inputs_hash(inputs)
    tag = debootstrap_tag(stack)
    started = time.monotonic()
    existing = None if force else find_by_label(client, tag, LABEL_BASE_INPUTS, wanted)
    if existing:
        say(f"base {tag}: reused (inputs unchanged)")
        return BaseImageResult(tag, existing, wanted, True, time.monotonic() - started)
    result = build_base(client, stack, tag, say=say)
    write_atomic(rocstack_home() / "base" / f"{stack.name}.json", json.dumps({**asdict(result), "inputs": inputs}, indent=2) + "\n")
    return result


def resolve_base(client: docker.DockerClient, stack: Stack, reference: str,
                 say: Callable[[str], None] = lambda text: None) -> tuple[str, dict]:
    """The base image id of a build (or its pinned reference when the engine lacks it) and what to record.

    A debootstrap base is made or reused in ``client``'s engine; a registry base is read from
    the engine when present, else BuildKit pulls it and the reference identifies it."""
    if stack.base.debootstrap is not None:
        result = ensure_base(client, stack, say=say)
        return result.image_id, asdict(result)
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        return reference, {"tag": reference, "image_id": None}
    return image.id, {"tag": reference, "image_id": image.id, "repo_digests": image.attrs.get("RepoDigests") or []}


def build_base(
    client: docker.DockerClient, stack: Stack, tag: str, say: Callable[[str], None] = lambda text: None
) -> BaseImageResult:
    """debootstrap the stack's base and import it as ``tag`` (always builds; see ensure_base)."""
    require_local_base(stack)
    inputs = base_inputs(stack)
    wanted = inputs_hash(inputs)
    started = time.monotonic()
    say(f"base {tag}: debootstrap {inputs['suite']} ({', '.join(inputs['include'])}) from {inputs['mirror']}")
    work = rocstack_home() / "base"
    work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    log_path = logs_dir() / f"base-{stack.name}-{stamp}.log"
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=work))
    try:
        _debootstrap(inputs, root, log_path)
        if stack.base.debootstrap.apt is not None:
            apt = stack.base.debootstrap.apt
            say(f"base {tag}: toolchain layer ({len(apt.packages)} pinned packages: "
                f"{', '.join(p.split('=')[0] for p in apt.packages)})")
            with open(log_path, "a") as log:
                install_layer(root, stack, inputs["mirror"], log)
        _prune(root)
        say(f"base {tag}: importing into the engine")
        image_id = _import(client, root, tag, {LABEL_BASE_INPUTS: wanted, LABEL_STACK: stack.name})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = BaseImageResult(tag, image_id, wanted, False, time.monotonic() - started)
    say(f"base {tag}: built in {result.seconds:.0f} s ({image_id[:19]})")
    return result
