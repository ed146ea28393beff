"""Storing an attestation next to its image in the registry, and finding it again.

The attestation is an OCI artifact: an image manifest with ``artifactType`` = the
attestation media type, the empty config, one layer (the signed envelope) and a
``subject`` pointing at the image manifest. It is uploaded under the cosign-style tag
``sha256-<hex>.att`` derived from the image digest. Registries with the OCI referrers
API also index it by its subject; ``find`` asks that API first and falls back to the
tag where the registry answers 404 (distribution 2.8, Debian's docker-registry, does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from rocstack.errors import RocstackError
from rocstack.registry.attestation import MEDIA_TYPE, VerificationError
from rocstack.registry.oci import OCI_MANIFEST, Manifest, RegistryClient

EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
MAX_ATTESTATION_BYTES = 8 << 20


def attestation_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.att"


def is_attestation_tag(tag: str) -> bool:
    return tag.startswith("sha256-") and tag.endswith(".att")


@dataclass(frozen=True)
class Attached:
    manifest_digest: str
    tag: str
    indexed_by_referrers: bool


def attach(client: RegistryClient, repository: str, subject: Manifest, envelope: bytes, annotations: dict) -> Attached:
    """Upload ``envelope`` as an artifact whose subject is the image manifest ``subject``."""
    if len(envelope) > MAX_ATTESTATION_BYTES:  # pull would refuse to read it
        raise RocstackError(
            f"the attestation is {len(envelope) >> 20} MiB, over the {MAX_ATTESTATION_BYTES >> 20} MiB limit",
            "the validation report is too large to attest: trim its evidence",
        )
    config_digest = client.put_blob(repository, EMPTY_CONFIG)
    layer_digest = client.put_blob(repository, envelope)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config_digest, "size": len(EMPTY_CONFIG)},
        "layers": [
            {
                "mediaType": MEDIA_TYPE,
                "digest": layer_digest,
                "size": len(envelope),
                "annotations": {"org.opencontainers.image.title": "attestation.json"},
            }
        ],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
        "annotations": {
            "org.opencontainers.image.created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **annotations,
        },
    }
    raw = json.dumps(manifest, sort_keys=True).encode()
    tag = attestation_tag(subject.digest)
    digest, indexed = client.put_manifest(repository, tag, raw, OCI_MANIFEST)
    return Attached(digest, tag, indexed)


@dataclass(frozen=True)
class Found:
    """Attestations of one image, newest first, and where they were found.

    Each item is the envelope's bytes, or the refusal for an artifact that could not
    be read as one, so one broken artifact cannot hide a good one beside it.
    """

    envelopes: list[bytes | VerificationError]
    source: str


def find(client: RegistryClient, repository: str, digest: str) -> Found:
    referrers = client.referrers(repository, digest, MEDIA_TYPE)
    if referrers is not None:
        newest_first = sorted(
            (d for d in referrers if isinstance(d.get("digest"), str)),
            key=lambda d: (d.get("annotations") or {}).get("org.opencontainers.image.created", ""),
            reverse=True,
        )
        return Found([_read(client, repository, d["digest"]) for d in newest_first], "referrers API")
    tag = attestation_tag(digest)
    if client.get_manifest(repository, tag) is None:
        return Found([], f"tag {tag}")
    return Found([_read(client, repository, tag)], f"tag {tag}")


def _read(client: RegistryClient, repository: str, reference: str) -> bytes | VerificationError:
    try:
        return _envelope(client, repository, reference)
    except VerificationError as exc:
        return exc


def _envelope(client: RegistryClient, repository: str, reference: str) -> bytes:
    manifest = client.get_manifest(repository, reference)
    if manifest is None:
        raise VerificationError("missing", f"attestation {reference[:19]} listed by {client.ref.host} is gone")
    return _envelope_from_manifest(client, repository, manifest)


def _envelope_from_manifest(client: RegistryClient, repository: str, manifest: Manifest) -> bytes:
    try:
        body = json.loads(manifest.raw)
        layers = [layer for layer in body["layers"] if layer.get("mediaType") == MEDIA_TYPE]
        layer_digest = layers[0]["digest"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise VerificationError(
            "corrupt", f"attestation manifest {manifest.digest[:19]} carries no {MEDIA_TYPE} layer"
        ) from None
    return client.get_blob(repository, layer_digest, MAX_ATTESTATION_BYTES)


