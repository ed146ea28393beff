"""Reading attestations in rocstack's first format (``rocstack.attestation-envelope/v1``).

rocstack before the in-toto format pushed a JSON envelope ``{schema, payload,
signatures: [{keyid, sig}]}`` signed with ed25519 over ``DOMAIN + canonical_json(payload)``,
stored under cosign's ``sha256-<hex>.att`` tag. ``push`` no longer writes it; ``pull``
and ``images`` still read it, with the same signature, digest, verdict, level and arch
checks, so images pushed before keep working until they are re-pushed. Such an
attestation has no stated level: it is derived from the report it embeds.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rocstack.errors import RocstackError
from rocstack.registry.refusals import VerificationError, canonical_json, parse_json
from rocstack.registry.statement import Claim, build_predicate, report_shape_problem

PAYLOAD_SCHEMA = "rocstack.attestation/v1"
ENVELOPE_SCHEMA = "rocstack.attestation-envelope/v1"
MEDIA_TYPE = "application/vnd.rocstack.attestation.v1+json"  # its layer (and artifactType)
DOMAIN = b"rocstack.attestation/v1\x00"


def legacy_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.att"


def parse_envelope(raw: bytes) -> dict:
    envelope = parse_json(raw, "attestation")
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
    return envelope


def check_signature(envelope: dict, trusted: dict[str, Ed25519PublicKey]) -> str:
    """Key id of the trusted key whose signature verifies; refuses bad or untrusted ones."""
    message = DOMAIN + canonical_json(envelope["payload"])
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
    signers = ", ".join(s["keyid"] for s in envelope["signatures"])
    raise VerificationError(
        "untrusted-key",
        f"attestation is signed by {signers}, which is not a trusted key",
        "if you trust the signer, add their public key: rocstack keys trust FILE.pub",
    )


def to_claim(payload: dict) -> Claim:
    """The old payload in the shape of a current statement (level derived from its report)."""
    subject = payload.get("subject")
    digest = subject.get("digest") if isinstance(subject, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise VerificationError("corrupt", "attestation payload has no sha256 subject digest")
    arches, stack, validated = payload.get("arches"), payload.get("stack"), payload.get("validated")
    if not isinstance(arches, list) or not arches or not all(isinstance(a, str) for a in arches):
        raise VerificationError("corrupt", "attestation payload has no arch list")
    if not isinstance(stack, str) or not isinstance(validated, bool):
        raise VerificationError("corrupt", "attestation payload lacks stack or validated")
    report = payload.get("validation") if isinstance(payload.get("validation"), dict) else None
    problem = report_shape_problem(report) if report else None
    if not isinstance(payload.get("components") or [], list):
        problem = "components is not a list"
    if problem:
        raise VerificationError("corrupt", f"attestation payload: {problem}")
    try:
        predicate = build_predicate(
            image_id=str(payload.get("image_id") or ""),
            media_type=str(subject.get("mediaType") or ""),
            stack=stack,
            arches=arches,
            components=[c for c in payload.get("components") or [] if isinstance(c, dict)],
            report=report,
            validated=validated,
            unvalidated_reason=payload.get("unvalidated_reason"),
        )
    except RocstackError as exc:
        raise VerificationError("corrupt", f"attestation payload: {exc.message}") from None
    predicate["verdict"] = payload.get("verdict")  # as signed, even without a report
    predicate["created"] = payload.get("created")  # never "now": that would make it the newest
    predicate["rocstack_version"] = payload.get("rocstack_version")
    return Claim((digest,), predicate)


def open_legacy(raw: bytes, trusted: dict[str, Ed25519PublicKey]) -> tuple[Claim, str]:
    """(claim, signer key id) of an old-format envelope, after its signature verified."""
    envelope = parse_envelope(raw)
    signer = check_signature(envelope, trusted)
    return to_claim(envelope["payload"]), signer
