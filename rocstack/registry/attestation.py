"""The signed validation attestation: what it says, how it is signed, how it is checked.

An attestation binds the validation verdict to one image manifest digest. Its payload
(schema ``rocstack.attestation/v1``) carries the subject (repository + manifest digest),
the image id, stack, arches and component refs from the build manifest, the verdict and
the whole validation report. The envelope carries the payload and ed25519 signatures
over ``DOMAIN + canonical_json(payload)``; the domain prefix keeps a signature over an
attestation from being replayed as a signature over any other rocstack JSON.
Nothing secret goes in: no key material, no credentials, no host paths of keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rocstack import __version__
from rocstack.arches import TargetID, parse_target_id
from rocstack.errors import ArchError, RocstackError
from rocstack.registry.keys import key_id

PAYLOAD_SCHEMA = "rocstack.attestation/v1"
ENVELOPE_SCHEMA = "rocstack.attestation-envelope/v1"
MEDIA_TYPE = "application/vnd.rocstack.attestation.v1+json"
DOMAIN = b"rocstack.attestation/v1\x00"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class VerificationError(RocstackError):
    """An attestation that does not let an image through; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str, hint: str | None = None, status: str | None = None):
        super().__init__(message, hint, exit_code=1)
        self.reason = reason
        self.status = status or reason  # what a listing shows: the verdict when that is the problem


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def build_payload(
    *,
    repository: str,
    digest: str,
    media_type: str,
    image_id: str,
    stack: str,
    arches: list[str],
    components: list[dict],
    report: dict | None,
    validated: bool,
    unvalidated_reason: str | None = None,
) -> dict:
    return {
        "schema": PAYLOAD_SCHEMA,
        "subject": {"repository": repository, "digest": digest, "mediaType": media_type},
        "image_id": image_id,
        "stack": stack,
        "arches": list(arches),
        "components": [
            {key: component.get(key) for key in ("name", "version", "ref", "source_sha256")}
            for component in components
        ],
        "validated": validated,
        "verdict": report.get("verdict") if report else None,
        "unvalidated_reason": unvalidated_reason,
        "validation": report,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rocstack_version": __version__,
    }


def sign(payload: dict, private_key: Ed25519PrivateKey) -> bytes:
    """The envelope, as the bytes that go into the registry."""
    signature = private_key.sign(DOMAIN + canonical_json(payload))
    envelope = {
        "schema": ENVELOPE_SCHEMA,
        "payload": payload,
        "signatures": [
            {"keyid": key_id(private_key.public_key()), "sig": base64.b64encode(signature).decode()}
        ],
    }
    return canonical_json(envelope)


@dataclass(frozen=True)
class Verified:
    payload: dict
    key_id: str

    @property
    def digest(self) -> str:
        return self.payload["subject"]["digest"]

    @property
    def stack(self) -> str:
        return self.payload["stack"]

    @property
    def arches(self) -> list[str]:
        return list(self.payload["arches"])

    @property
    def verdict(self) -> str | None:
        return self.payload["verdict"]


def parse_envelope(raw: bytes) -> dict:
    """The envelope as a dict, or a ``corrupt`` refusal naming what is wrong with it."""
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError("corrupt", f"attestation is not valid JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(envelope, dict) or envelope.get("schema") != ENVELOPE_SCHEMA:
        raise VerificationError("corrupt", f"attestation is not a {ENVELOPE_SCHEMA} envelope")
    payload = envelope.get("payload")
    signatures = envelope.get("signatures")
    if not isinstance(payload, dict) or payload.get("schema") != PAYLOAD_SCHEMA:
        raise VerificationError("corrupt", f"attestation payload is not {PAYLOAD_SCHEMA}")
    if not isinstance(signatures, list) or not signatures or not all(
        isinstance(s, dict) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str) for s in signatures
    ):
        raise VerificationError("corrupt", "attestation has no well-formed signatures")
    subject = payload.get("subject")
    if not isinstance(subject, dict) or not _DIGEST_RE.match(str(subject.get("digest", ""))):
        raise VerificationError("corrupt", "attestation payload has no sha256 subject digest")
    arches = payload.get("arches")
    if not isinstance(arches, list) or not arches or not all(isinstance(a, str) for a in arches):
        raise VerificationError("corrupt", "attestation payload has no arch list")
    if not isinstance(payload.get("stack"), str) or not isinstance(payload.get("validated"), bool):
        raise VerificationError("corrupt", "attestation payload lacks stack or validated")
    return envelope


def check_signature(envelope: dict, trusted: dict[str, Ed25519PublicKey]) -> str:
    """Key id of the trusted key whose signature verifies; refuses bad or untrusted ones."""
    message = DOMAIN + canonical_json(envelope["payload"])
    signers = [s["keyid"] for s in envelope["signatures"]]
    for entry in envelope["signatures"]:
        public = trusted.get(entry["keyid"])
        if public is None:
            continue
        try:
            public.verify(base64.b64decode(entry["sig"], validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            raise VerificationError(
                "bad-signature",
                f"attestation signature by trusted key {entry['keyid']} does not verify: "
                "the attestation was altered after signing or the signature is forged",
                "do not use this image; re-push it from a validated build",
            ) from None
        return entry["keyid"]
    raise VerificationError(
        "untrusted-key",
        f"attestation is signed by {', '.join(signers)}, which is not a trusted key",
        "if you trust the signer, add their public key: rocstack keys trust FILE.pub",
    )


def verify(
    raw: bytes,
    *,
    trusted: dict[str, Ed25519PublicKey],
    digest: str,
    arch: TargetID | None = None,
    stack: str | None = None,
) -> Verified:
    """Every check ``pull`` relies on, in the order a forger would have to beat them."""
    envelope = parse_envelope(raw)
    signer = check_signature(envelope, trusted)
    payload = envelope["payload"]
    bound = payload["subject"]["digest"]
    if bound != digest:
        raise VerificationError(
            "digest-mismatch",
            f"attestation is for image {bound[:19]}, not for this image {digest[:19]} "
            "(the tag was moved to a different image or the attestation was copied)",
            "pull a tag whose image was pushed with its own attestation",
        )
    if not payload["validated"] or payload.get("verdict") != "pass":
        why = payload.get("unvalidated_reason") or f"verdict {payload.get('verdict')}"
        raise VerificationError(
            "verdict",
            f"image {digest[:19]} did not pass validation ({why})",
            "validate and push a fixed build",
            status=str(payload.get("verdict") or "unvalidated"),
        )
    if stack is not None and payload["stack"] != stack:
        raise VerificationError("stack", f"image {digest[:19]} is stack '{payload['stack']}', not '{stack}'")
    if arch is not None and not covers(payload["arches"], arch):
        raise VerificationError(
            "arch",
            f"image {digest[:19]} is built for {','.join(payload['arches'])}, which does not run on {arch}",
            f"build and push an image for {arch}",
        )
    return Verified(payload, signer)


def covers(image_arches: list[str], device: TargetID) -> bool:
    """Does any target the image was built for run on ``device`` (LLVM target-ID rules)?"""
    for text in image_arches:
        try:
            built = parse_target_id(text, known_only=False)
        except ArchError:
            continue
        if built.runs_on(device):
            return True
    return False
