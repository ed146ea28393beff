"""Storing an attestation next to its image in the registry, and finding it again.

The attestation is an OCI referrer: an image manifest with ``artifactType``
:data:`ARTIFACT_TYPE`, the empty config, exactly one layer (the Sigstore bundle, media
type ``application/vnd.dev.sigstore.bundle.v0.3+json``, which is what cosign looks
for) and ``subject`` = the image manifest. It is uploaded by digest, untagged. A
registry with the OCI 1.1 referrers API answers the upload with ``OCI-Subject`` and
indexes it; otherwise rocstack maintains the referrers tag schema itself: an OCI
index under the tag ``sha256-<hex>`` (the image digest) listing every referrer, which
cosign, oras and rocstack all read when the API is missing.

Updating that index is read-modify-write: two pushes attaching to the same image at
the same instant can lose one entry (the artifact stays in the registry; re-push).
Attestations in rocstack's first format (cosign's ``sha256-<hex>.att`` tag) are still
found, for images pushed before.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from rocstack.errors import RocstackError
from rocstack.registry import legacy
from rocstack.registry.attestation import BUNDLE, LEGACY, PREDICATE_TYPE
from rocstack.registry.dsse import BUNDLE_MEDIA_TYPE
from rocstack.registry.oci import OCI_INDEX, OCI_MANIFEST, Manifest, RegistryClient, sha256_digest
from rocstack.registry.refusals import VerificationError

ARTIFACT_TYPE = "application/vnd.rocstack.attestation.v2+json"
EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
MAX_ATTESTATION_BYTES = 8 << 20
CREATED = "org.opencontainers.image.created"
_RESERVED_TAG = re.compile(r"^sha256-[0-9a-f]{64}(\.att)?$")


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``<alg>-<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"


def is_attestation_tag(tag: str) -> bool:
    """A tag that holds referrers (``sha256-<hex>``) or a legacy attestation (``….att``), not an image."""
    return bool(_RESERVED_TAG.match(tag))


@dataclass(frozen=True)
class Attached:
    manifest_digest: str
    via: str  # "referrers API" | "referrers tag schema"
    index_tag: str | None  # the referrers index tag, when the schema was used

    @property
    def indexed_by_referrers(self) -> bool:
        return self.index_tag is None


def attach(client: RegistryClient, repository: str, subject: Manifest, bundle: bytes, annotations: dict) -> Attached:
    """Upload ``bundle`` as a referrer of the image manifest ``subject``."""
    if len(bundle) > MAX_ATTESTATION_BYTES:  # pull would refuse to read it
        raise RocstackError(
            f"the attestation is {len(bundle) >> 20} MiB, over the {MAX_ATTESTATION_BYTES >> 20} MiB limit",
            "the validation report is too large to attest: trim its evidence",
        )
    config_digest = client.put_blob(repository, EMPTY_CONFIG)
    layer_digest = client.put_blob(repository, bundle)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config_digest, "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "digest": layer_digest, "size": len(bundle)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
        "annotations": {
            CREATED: datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": PREDICATE_TYPE,
            **annotations,
        },
    }
    raw = json.dumps(manifest, sort_keys=True).encode()
    digest, indexed = client.put_manifest(repository, sha256_digest(raw), raw, OCI_MANIFEST)
    if indexed:
        return Attached(digest, "referrers API", None)
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(raw),
        "artifactType": ARTIFACT_TYPE,
        "annotations": manifest["annotations"],
    }
    tag = referrers_tag(subject.digest)
    _add_to_index(client, repository, tag, descriptor)
    return Attached(digest, "referrers tag schema", tag)


def _read_index(client: RegistryClient, repository: str, tag: str) -> dict | None:
    found = client.get_manifest(repository, tag)
    if found is None:
        return None
    try:
        index = json.loads(found.raw)
        if index.get("mediaType", found.media_type) != OCI_INDEX or not isinstance(index.get("manifests"), list):
            raise ValueError
    except (ValueError, AttributeError):
        raise RocstackError(
            f"tag {tag[:19]}… in {client.ref.host}/{repository} holds something other than an OCI referrers index",
            "that tag is reserved for the referrers of the image with that digest: delete it and push again",
        ) from None
    return index


def _add_to_index(client: RegistryClient, repository: str, tag: str, descriptor: dict) -> None:
    index = _read_index(client, repository, tag) or {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if any(isinstance(d, dict) and d.get("digest") == descriptor["digest"] for d in index["manifests"]):
        return
    index["manifests"].append(descriptor)
    client.put_manifest(repository, tag, json.dumps(index, sort_keys=True).encode(), OCI_INDEX)


@dataclass(frozen=True)
class Located:
    """One attestation found for an image: its bytes (or why they could not be read) and its form."""

    content: bytes | VerificationError
    form: str  # attestation.BUNDLE | attestation.LEGACY
    listed_created: str  # the artifact's unsigned creation annotation: for ordering problems only


@dataclass(frozen=True)
class Found:
    """Attestations of one image, listed newest first, and where they were looked for."""

    items: list[Located]
    source: str


def find(client: RegistryClient, repository: str, digest: str) -> Found:
    descriptors = client.referrers(repository, digest, ARTIFACT_TYPE)
    source = "referrers API"
    if descriptors is None:
        tag = referrers_tag(digest)
        source = f"referrers tag {tag[:19]}…"
        index = _listing(client, repository, tag)
        descriptors = [d for d in index if d.get("artifactType") == ARTIFACT_TYPE]
    items = [
        Located(_read_bundle(client, repository, d["digest"]), BUNDLE, str((d.get("annotations") or {}).get(CREATED, "")))
        for d in descriptors if isinstance(d.get("digest"), str)
    ]
    old = _read_legacy(client, repository, digest)
    if old is not None:
        items.append(old)
        source += f" and legacy tag {legacy.legacy_tag(digest)[:19]}….att"
    items.sort(key=lambda item: item.listed_created, reverse=True)
    return Found(items, source)


def _listing(client: RegistryClient, repository: str, tag: str) -> list[dict]:
    try:
        index = _read_index(client, repository, tag)
    except RocstackError:
        return []  # not a referrers index: nothing is listed there
    return [d for d in (index or {}).get("manifests", []) if isinstance(d, dict)]


def _read_bundle(client: RegistryClient, repository: str, reference: str) -> bytes | VerificationError:
    try:
        manifest = client.get_manifest(repository, reference)
        if manifest is None:
            raise VerificationError("missing", f"attestation {reference[:19]} listed by {client.ref.host} is gone")
        return _layer(client, repository, manifest, BUNDLE_MEDIA_TYPE)
    except VerificationError as exc:
        return exc


def _read_legacy(client: RegistryClient, repository: str, digest: str) -> Located | None:
    """An attestation in rocstack's first format, if one sits under the ``.att`` tag.

    cosign writes its own attestations under that tag too; those are not rocstack's
    and are ignored here (cosign users verify them with cosign).
    """
    manifest = client.get_manifest(repository, legacy.legacy_tag(digest))
    if manifest is None:
        return None
    try:
        body = json.loads(manifest.raw)
        created = str((body.get("annotations") or {}).get(CREATED, ""))
        if not any(layer.get("mediaType") == legacy.MEDIA_TYPE for layer in body.get("layers") or []):
            return None
    except (ValueError, AttributeError, TypeError):
        return None
    try:
        return Located(_layer(client, repository, manifest, legacy.MEDIA_TYPE), LEGACY, created)
    except VerificationError as exc:
        return Located(exc, LEGACY, created)


def _layer(client: RegistryClient, repository: str, manifest: Manifest, media_type: str) -> bytes:
    try:
        body = json.loads(manifest.raw)
        layers = [layer for layer in body["layers"] if layer.get("mediaType") == media_type]
        layer_digest = layers[0]["digest"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise VerificationError(
            "corrupt", f"attestation manifest {manifest.digest[:19]} carries no {media_type} layer"
        ) from None
    return client.get_blob(repository, layer_digest, MAX_ATTESTATION_BYTES)
