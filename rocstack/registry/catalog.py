"""What a registry holds: images grouped by digest, their facts and their attestations.

Image facts (created, stack/arches labels) come from the image config blob, which the
manifest digest pins, so they are as trustworthy as the digest. Whether an image may
be used is decided only by its signed attestation (``judge``): among the attestations
found, the newest one carrying a valid signature by a trusted key decides; unsigned,
untrusted or corrupt ones are skipped, and if none decides, the newest one's problem
is the reason given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rocstack.arches import TargetID
from rocstack.errors import RocstackError
from rocstack.registry import artifacts, attestation
from rocstack.registry.attestation import Verified, VerificationError
from rocstack.registry.oci import DOCKER_MANIFEST_LIST, OCI_INDEX, RegistryClient

MAX_CONFIG_BYTES = 4 << 20


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
    envelopes: list[bytes] = field(default_factory=list)
    attestation_source: str = ""
    problem: str | None = None  # why the image cannot be judged at all (not an image we can read)
    find_error: VerificationError | None = None  # an attestation artifact that exists but is malformed


def scan(client: RegistryClient, repositories: list[str]) -> list[RemoteImage]:
    """Every tagged image in ``repositories``, newest first, with its attestations fetched."""
    found: list[RemoteImage] = []
    for repository in repositories:
        by_digest: dict[str, RemoteImage] = {}
        for tag in sorted(client.tags(repository)):
            if artifacts.is_attestation_tag(tag):
                continue
            manifest = client.get_manifest(repository, tag)
            if manifest is None:  # deleted between listing and reading
                continue
            image = by_digest.get(manifest.digest)
            if image is None:
                image = by_digest[manifest.digest] = RemoteImage(repository, manifest.digest, manifest.media_type)
                _read_config(client, image, manifest.raw)
            image.tags.append(tag)
        for image in by_digest.values():
            if image.problem is None:
                try:
                    located = artifacts.find(client, repository, image.digest)
                    image.envelopes, image.attestation_source = located.envelopes, located.source
                except VerificationError as exc:
                    image.find_error = exc
            found.append(image)
    found.sort(key=lambda image: (image.created, image.tags), reverse=True)
    return found


def _read_config(client: RegistryClient, image: RemoteImage, raw: bytes) -> None:
    if image.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
        image.problem = "a multi-platform index (rocstack images are single-platform)"
        return
    try:
        config_digest = json.loads(raw)["config"]["digest"]
        config = json.loads(client.get_blob(image.repository, config_digest, MAX_CONFIG_BYTES))
        labels = (config.get("config") or {}).get("Labels") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        image.problem = "an image whose manifest or config is not readable JSON"
        return
    image.image_id = config_digest
    image.created = str(config.get("created") or "")
    image.stack = labels.get("io.rocstack.stack", "")
    image.arches = [a.strip() for a in labels.get("io.rocstack.arches", "").split(",") if a.strip()]
    if not image.stack:
        image.problem = "not a rocstack image (no io.rocstack.stack label)"


def judge(
    image: RemoteImage,
    trusted: dict[str, Ed25519PublicKey],
    *,
    arch: TargetID | None = None,
    stack: str | None = None,
) -> Verified:
    """The verified attestation that lets ``image`` through, or the VerificationError why not."""
    if image.problem:
        raise VerificationError("unreadable", f"image {image.digest[:19]} is {image.problem}")
    if image.find_error:
        raise image.find_error
    if not image.envelopes:
        raise VerificationError(
            "missing",
            f"image {image.digest[:19]} has no attestation ({image.attestation_source} not found)",
            "push it with `invoke push`, which signs and attaches one",
        )
    first_problem: RocstackError | None = None
    for raw in image.envelopes:
        try:
            envelope = attestation.parse_envelope(raw)
            attestation.check_signature(envelope, trusted)
        except VerificationError as exc:
            first_problem = first_problem or exc
            continue
        return attestation.verify(raw, trusted=trusted, digest=image.digest, arch=arch, stack=stack)
    raise first_problem  # type: ignore[misc]  # envelopes is non-empty, so a problem was recorded
