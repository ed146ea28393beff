"""Attestation payloads, signatures and every verification refusal, on in-memory envelopes."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rocstack.arches import parse_target_id
from rocstack.registry import attestation
from rocstack.registry.attestation import VerificationError, canonical_json, covers
from rocstack.registry.keys import key_id

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
GFX942 = parse_target_id("gfx942")


def _payload(digest=DIGEST, verdict="pass", validated=True, arches=("gfx942",), stack="local"):
    report = {"schema": "rocstack.validation/v1", "verdict": verdict, "image": {"id": "sha256:" + "c" * 64}, "checks": []}
    return attestation.build_payload(
        repository="127.0.0.1:5000/rocstack",
        digest=digest,
        media_type="application/vnd.docker.distribution.manifest.v2+json",
        image_id="sha256:" + "c" * 64,
        stack=stack,
        arches=list(arches),
        components=[{"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None, "extra": 1}],
        report=report if verdict else None,
        validated=validated,
        unvalidated_reason=None if validated else "no validation report at /x",
    )


@pytest.fixture
def signer():
    key = Ed25519PrivateKey.generate()
    return key, {key_id(key.public_key()): key.public_key()}


def test_round_trip_verifies_and_reports_signer(signer):
    key, trusted = signer
    raw = attestation.sign(_payload(), key)
    verified = attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=GFX942, stack="local")
    assert verified.key_id == key_id(key.public_key())
    assert verified.digest == DIGEST and verified.arches == ["gfx942"] and verified.verdict == "pass"
    # component refs keep only the build-manifest fields
    assert verified.payload["components"] == [
        {"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None}
    ]


def test_canonical_json_ignores_key_order_and_whitespace():
    assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json(json.loads('{ "a": [1, "é"], "b": 1 }'))
    assert canonical_json({"a": 1}) == b'{"a":1}'


def test_reformatted_envelope_still_verifies(signer):
    """The signature covers the canonical payload, not the bytes: pretty-printing is harmless."""
    key, trusted = signer
    pretty = json.dumps(json.loads(attestation.sign(_payload(), key)), indent=4).encode()
    assert attestation.verify(pretty, trusted=trusted, digest=DIGEST).key_id in trusted


def test_altered_payload_is_bad_signature(signer):
    key, trusted = signer
    envelope = json.loads(attestation.sign(_payload(verdict="fail"), key))
    envelope["payload"]["verdict"] = "pass"  # a forger flips the verdict
    with pytest.raises(VerificationError, match="does not verify") as refused:
        attestation.verify(json.dumps(envelope).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature" and refused.value.exit_code == 1


def test_garbage_signature_is_bad_signature(signer):
    key, trusted = signer
    envelope = json.loads(attestation.sign(_payload(), key))
    envelope["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(VerificationError) as refused:
        attestation.verify(json.dumps(envelope).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature"


def test_untrusted_key(signer):
    _, trusted = signer
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError, match="not a trusted key") as refused:
        attestation.verify(attestation.sign(_payload(), stranger), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "untrusted-key"
    assert "keys trust" in refused.value.hint


def test_stranger_claiming_a_trusted_key_id_is_bad_signature(signer):
    key, trusted = signer
    stranger = Ed25519PrivateKey.generate()
    envelope = json.loads(attestation.sign(_payload(), stranger))
    envelope["signatures"][0]["keyid"] = key_id(key.public_key())
    with pytest.raises(VerificationError) as refused:
        attestation.verify(json.dumps(envelope).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature"


def test_attestation_for_another_digest(signer):
    key, trusted = signer
    with pytest.raises(VerificationError, match="tag was moved") as refused:
        attestation.verify(attestation.sign(_payload(digest=OTHER), key), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "digest-mismatch"


@pytest.mark.parametrize(
    "verdict, validated, status",
    [("fail", True, "fail"), ("error", True, "error"), ("fail", False, "fail"), (None, False, "unvalidated")],
)
def test_verdict_other_than_pass_is_refused(signer, verdict, validated, status):
    key, trusted = signer
    raw = attestation.sign(_payload(verdict=verdict, validated=validated), key)
    with pytest.raises(VerificationError, match="did not pass validation") as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "verdict" and refused.value.status == status


def test_arch_not_covered(signer):
    key, trusted = signer
    raw = attestation.sign(_payload(arches=("gfx90a",)), key)
    with pytest.raises(VerificationError, match="does not run on gfx942") as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=GFX942)
    assert refused.value.reason == "arch"


def test_other_stack_is_refused(signer):
    key, trusted = signer
    with pytest.raises(VerificationError) as refused:
        attestation.verify(attestation.sign(_payload(stack="rocm-6"), key), trusted=trusted, digest=DIGEST, stack="local")
    assert refused.value.reason == "stack"


@pytest.mark.parametrize(
    "built, device, runs",
    [
        (["gfx942"], "gfx942", True),
        (["gfx942"], "gfx942:xnack+", True),  # built "any" runs with xnack on or off
        (["gfx942:xnack-"], "gfx942:xnack+", False),
        (["gfx942:xnack-"], "gfx942", True),  # MI300 default mode is xnack off
        (["gfx90a", "gfx942"], "gfx942", True),
        (["gfx90a"], "gfx942", False),
        (["not-an-arch"], "gfx942", False),
    ],
)
def test_arch_coverage_follows_target_id_rules(built, device, runs):
    assert covers(built, parse_target_id(device)) is runs


@pytest.mark.parametrize(
    "raw, needle",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "envelope"),
        (b'{"schema": "rocstack.attestation-envelope/v1", "payload": {}, "signatures": []}', "payload is not"),
    ],
)
def test_corrupt_artifact_json(signer, raw, needle):
    _, trusted = signer
    with pytest.raises(VerificationError, match=needle) as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "corrupt"


def test_payload_without_subject_digest_is_corrupt(signer):
    key, trusted = signer
    payload = _payload()
    payload["subject"]["digest"] = "latest"
    with pytest.raises(VerificationError, match="no sha256 subject digest"):
        attestation.verify(attestation.sign(payload, key), trusted=trusted, digest=DIGEST)


def test_envelope_holds_no_private_key_material(signer):
    key, _ = signer
    from cryptography.hazmat.primitives import serialization

    raw_private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    envelope = attestation.sign(_payload(), key)
    assert raw_private not in envelope
    assert base64.b64encode(raw_private) not in envelope
    assert raw_private.hex().encode() not in envelope
