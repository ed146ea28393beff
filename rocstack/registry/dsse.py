"""Signing a statement: a DSSE envelope over PAE with ed25519, wrapped in a Sigstore bundle v0.3.

DSSE signs ``PAE(payloadType, payload)`` = ``"DSSEv1" SP len(type) SP type SP
len(body) SP body``, so a signature can never be replayed for another payload type.
The envelope travels in a Sigstore bundle (``dsseEnvelope`` + ``verificationMaterial``)
because that is what cosign 3 reads from an OCI referrer (cosign 2 with
``--new-bundle-format``); with ``--key`` and ``--insecure-ignore-tlog`` cosign needs
no transparency-log entry, no certificate and no network.

The rocstack key id (``ed25519:<16 hex>``) goes into the bundle's
``verificationMaterial.publicKey.hint``, not into the DSSE signature's ``keyid``:
cosign (through go-securesystemslib's DSSE verifier) skips any signature whose
``keyid`` is set and differs from the SSH SHA256 fingerprint of the ``--key`` it was
given, so a rocstack id there would make every cosign verification fail. The DSSE
spec makes ``keyid`` an optional, unauthenticated hint; cosign itself leaves it empty.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rocstack.registry.keys import key_id
from rocstack.registry.refusals import VerificationError, canonical_json, parse_json

PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_URLSAFE = str.maketrans("-_", "+/")


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def sign_bundle(payload: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The Sigstore bundle (JSON bytes) carrying ``payload`` signed by ``private_key``."""
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_id(private_key.public_key())}},
        "dsseEnvelope": {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }
    return canonical_json(bundle)


@dataclass(frozen=True)
class Opened:
    payload: bytes  # the statement, as signed
    key_id: str  # the trusted key whose signature verified


def _b64(text: object) -> bytes:
    """DSSE allows standard or URL-safe base64."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.b64decode(text.translate(_URLSAFE), validate=True)


def _corrupt(what: str) -> VerificationError:
    return VerificationError("corrupt", f"attestation bundle {what}")


def parse_bundle(raw: bytes) -> tuple[bytes, bytes, str]:
    """(payload, signature, key hint) of a bundle, or a ``corrupt`` refusal."""
    bundle = parse_json(raw, "attestation")
    if not isinstance(bundle, dict) or bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise _corrupt(f"is not a {BUNDLE_MEDIA_TYPE} Sigstore bundle")
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise _corrupt(f"holds no DSSE envelope of type {PAYLOAD_TYPE}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise _corrupt("does not hold exactly one DSSE signature (a Sigstore bundle must)")
    try:
        payload, signature = _b64(envelope.get("payload")), _b64(signatures[0].get("sig"))
    except (ValueError, binascii.Error):
        raise _corrupt("has a payload or signature that is not base64") from None
    material = bundle.get("verificationMaterial")
    public = material.get("publicKey") if isinstance(material, dict) else None
    hint = public.get("hint", "") if isinstance(public, dict) else ""
    return payload, signature, hint if isinstance(hint, str) else ""


def _verifies(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def open_bundle(raw: bytes, trusted: dict[str, Ed25519PublicKey]) -> Opened:
    """The signed payload and its trusted signer; refuses bad or untrusted signatures.

    The hint names the key to check; a bundle without one (made by another tool) is
    checked against every trusted key.
    """
    payload, signature, hint = parse_bundle(raw)
    message = pae(PAYLOAD_TYPE, payload)
    if hint in trusted:
        if not _verifies(trusted[hint], signature, message):
            raise VerificationError(
                "bad-signature",
                f"attestation signature by trusted key {hint} does not verify: "
                "the attestation was altered after signing or the signature is forged",
                "do not use this image; re-push it from a validated build",
            )
        return Opened(payload, hint)
    if not hint:
        for kid, public in trusted.items():
            if _verifies(public, signature, message):
                return Opened(payload, kid)
    raise VerificationError(
        "untrusted-key",
        f"attestation is signed by {hint or 'a key it does not name'}, which is not a trusted key",
        "if you trust the signer, add their public key: rocstack keys trust FILE.pub",
    )
