"""What a registry holds: images grouped by digest, their facts and their attestations.

Image facts (created, stack/arches labels) come from the image config blob, which the
manifest digest pins, so they are as trustworthy as the digest. Whether an image may
be used is decided only by its signed attestation (``judge``): among the attestations
found, the one a trusted key signed most recently (by the signed creation time)
decides; unsigned, untrusted or corrupt ones are skipped, and if none decides, the
newest one's problem is the reason given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rocstack.arches import TargetID
from rocstack.contracts import LABEL_STACK, parse_labels
from rocstack.registry import artifacts, attestation
from rocstack.registry.attestation import Verified, VerificationError
from rocstack.registry.oci import DOCKER_MANIFEST_LIST, OCI_INDEX, RegistryClient

MAX_CONFIG_BYTES = 4 << 20
IMAGE_CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    None,  # an index has no config; _read_config names it
)


@dataclass
class RemoteImage:
    repository: str  # repository name inside the registry
    digest: str
    media_type: str
    tags: list[str] = field(default_factory=list)
    created: str = ""
    stack: str = ""
    arches: list[str] = field(default_factory=list)
    image_id: str = ""
    attestations: list[artifacts.Located] = field(default_factory=list)
    attestation_source: str = ""
    problem: str | None = None  # why the image cannot be judged at all (not an image we can read)


def scan(client: RegistryClient, repositories: list[str]) -> list[RemoteImage]:
    """Every tagged image in ``repositories``, newest first, with its attestations fetched."""
    found: list[RemoteImage] = []
    for repository in repositories:
        by_digest: dict[str, RemoteImage] = {}
        for tag in sorted(client.tags(repository)):
            if artifacts.is_attestation_tag(tag):
                continue
            manifest = client.get_manifest(repository, tag)
            if manifest is None or _is_artifact(manifest.raw):  # deleted meanwhile / not an image
                continue
            image = by_digest.get(manifest.digest)
            if image is None:
                image = by_digest[manifest.digest] = RemoteImage(repository, manifest.digest, manifest.media_type)
                _read_config(client, image, manifest.raw)
            image.tags.append(tag)
        for image in by_digest.values():
            if image.problem is None:
                located = artifacts.find(client, repository, image.digest)
                image.attestations, image.attestation_source = located.items, located.source
            found.append(image)
    found.sort(key=lambda image: (_timestamp(image.created), image.tags), reverse=True)
    return found


def _is_artifact(raw: bytes) -> bool:
    """An OCI artifact (attestation, SBOM, signature...) rather than a runnable image."""
    try:
        body = json.loads(raw)
        return bool(body.get("artifactType")) or body.get("config", {}).get("mediaType") not in IMAGE_CONFIG_TYPES
    except (ValueError, AttributeError):
        return False  # left to _read_config, which reports it as unreadable


def _timestamp(text: str) -> datetime:
    """Image config ``created`` (RFC 3339, nanoseconds, ``Z``) as an aware datetime; unknown sorts oldest."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _read_config(client: RegistryClient, image: RemoteImage, raw: bytes) -> None:
    if image.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        image.problem = "a multi-platform index (rocstack images are single-platform)"
        return
    try:
        config_digest = json.loads(raw)["config"]["digest"]
        config = json.loads(client.get_blob(image.repository, config_digest, MAX_CONFIG_BYTES))
        labels = parse_labels((config.get("config") or {}).get("Labels"))
    except (ValueError, KeyError, TypeError, AttributeError):
        image.problem = "an image whose manifest or config is not readable JSON"
        return
    image.image_id = config_digest
    image.created = str(config.get("created") or "")
    image.stack = labels.stack
    image.arches = list(labels.arches)
    if not image.stack:
        image.problem = f"not a rocstack image (no {LABEL_STACK} label)"


def judge(
    image: RemoteImage,
    trusted: dict[str, Ed25519PublicKey],
    *,
    arch: TargetID | None = None,
    stack: str | None = None,
    allow_static: bool = False,
) -> Verified:
    """The verified attestation that lets ``image`` through, or the VerificationError why not."""
    if image.problem:
        raise VerificationError("unreadable", f"image {image.digest[:19]} is {image.problem}")
    if not image.attestations:
        raise VerificationError(
            "missing",
            f"image {image.digest[:19]} has no attestation (none found via {image.attestation_source})",
            "push it with `invoke push`, which signs and attaches one",
        )
    chosen = attestation.newest_trusted(image.attestations, trusted, image.digest)
    return attestation.check(chosen, digest=image.digest, arch=arch, stack=stack, allow_static=allow_static)
