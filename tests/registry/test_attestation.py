"""Attestation statements, DSSE bundles, signatures and every verification refusal, in memory."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from regtest_support import legacy_envelope, legacy_payload, with_statement

from rocstack.arches import parse_target_id
from rocstack.registry import attestation, dsse, statement
from rocstack.registry.attestation import BUNDLE, LEGACY, VerificationError, canonical_json, covers
from rocstack.registry.keys import key_id

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
GFX942 = parse_target_id("gfx942")
GPU = {"available": True, "vendor": "amd", "name": "AMD Instinct MI300X", "target_id": "gfx942:sramecc+:xnack-"}


def _report(verdict="pass", gpu=True, **extra):
    status = "pass" if gpu else "skip"
    return {
        "schema": "rocstack.validation/v1",
        "verdict": verdict,
        "image": {"id": "sha256:" + "c" * 64},
        "started": "2026-12-01T10:00:00+00:00",
        "environment": {"gpu": GPU if gpu else {"available": False, "reason": "no /dev/kfd"}},
        "gpu_access": {"vendor": "amd" if gpu else None, "reason": "test", "docker_options": {"devices": ["/dev/kfd"]}},
        "checks": [
            {"name": "audit:torch", "category": "audit", "status": "pass", "evidence": "ok"},
            {"name": "gpu-arch", "category": "python", "status": status, "evidence": "no GPU" if not gpu else "gfx942"},
            {"name": "pytest:k[gpu]", "category": "correctness", "status": status, "evidence": "no GPU visible"},
        ],
        **extra,
    }


def _statement(digest=DIGEST, verdict="pass", validated=True, arches=("gfx942",), stack="local", report=None, gpu=True):
    if report is None and verdict:
        report = _report(verdict, gpu)
    return attestation.build_statement(
        repository="127.0.0.1:5000/rocstack",
        digest=digest,
        media_type="application/vnd.docker.distribution.manifest.v2+json",
        image_id="sha256:" + "c" * 64,
        stack=stack,
        arches=list(arches),
        components=[{"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None, "extra": 1}],
        report=report,
        validated=validated,
        unvalidated_reason=None if validated else "no validation report at /x",
    )


@pytest.fixture
def signer():
    key = Ed25519PrivateKey.generate()
    return key, {key_id(key.public_key()): key.public_key()}


def test_round_trip_verifies_and_reports_signer(signer):
    key, trusted = signer
    raw = attestation.sign(_statement(), key)
    verified = attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=GFX942, stack="local")
    assert verified.key_id == key_id(key.public_key()) and verified.form == BUNDLE
    assert verified.digest == DIGEST and verified.arches == ["gfx942"] and verified.verdict == "pass"
    assert verified.level == "gpu-verified" and verified.gpu_name == "AMD Instinct MI300X"
    assert verified.check_counts == {"pass": 3, "skip": 0, "fail": 0, "error": 0}
    assert verified.components == [{"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None}]


def test_statement_is_in_toto_v1_with_the_rocstack_predicate(signer):
    key, _ = signer
    bundle = json.loads(attestation.sign(_statement(), key))
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key_id(key.public_key())}}
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0].keys() == {"sig"}  # no keyid: cosign skips a keyid that is not its own
    body = json.loads(base64.b64decode(envelope["payload"]))
    assert body["_type"] == "https://in-toto.io/Statement/v1"
    assert body["predicateType"] == statement.PREDICATE_TYPE == "https://rocstack.dev/attestation/validation/v1"
    assert body["subject"] == [{"name": "127.0.0.1:5000/rocstack", "digest": {"sha256": "a" * 64}}]
    predicate = body["predicate"]
    assert predicate["level"] == "gpu-verified" and predicate["level_source"] == "derived"
    assert predicate["gpu"]["device"]["target_id"] == "gfx942:sramecc+:xnack-"
    assert predicate["gpu"]["access"] == {"vendor": "amd", "reason": "test"}  # not the host's device options
    assert predicate["checks"] == {"total": 3, "pass": 3, "fail": 0, "skip": 0, "error": 0, "failed": [], "gpu_skipped": []}
    report = predicate["report"]
    assert report["document"] == _report() and report["started"] == "2026-12-01T10:00:00+00:00"
    assert report["sha256"] == __import__("hashlib").sha256(canonical_json(_report())).hexdigest()


def test_pae_matches_the_dsse_specification():
    # the test vector of the DSSE protocol document
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_signature_covers_pae_of_the_payload(signer):
    key, _ = signer
    bundle = json.loads(attestation.sign(_statement(), key))
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    key.public_key().verify(signature, b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload))


def test_canonical_json_ignores_key_order_and_whitespace():
    assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json(json.loads('{ "a": [1, "é"], "b": 1 }'))
    assert canonical_json({"a": 1}) == b'{"a":1}'


def test_reformatted_bundle_still_verifies(signer):
    """The signature covers the payload bytes, not the bundle's layout."""
    key, trusted = signer
    pretty = json.dumps(json.loads(attestation.sign(_statement(), key)), indent=4).encode()
    assert attestation.verify(pretty, trusted=trusted, digest=DIGEST).key_id in trusted


def test_altered_statement_is_bad_signature(signer):
    key, trusted = signer
    raw = attestation.sign(_statement(verdict="fail"), key)
    forged = with_statement(raw, lambda body: body["predicate"].update(verdict="pass"))  # a forger flips the verdict
    with pytest.raises(VerificationError, match="does not verify") as refused:
        attestation.verify(forged, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature" and refused.value.exit_code == 1


def test_garbage_signature_is_bad_signature(signer):
    key, trusted = signer
    bundle = json.loads(attestation.sign(_statement(), key))
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    with pytest.raises(VerificationError) as refused:
        attestation.verify(json.dumps(bundle).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature"


def test_untrusted_key(signer):
    _, trusted = signer
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError, match="not a trusted key") as refused:
        attestation.verify(attestation.sign(_statement(), stranger), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "untrusted-key" and key_id(stranger.public_key()) in refused.value.message
    assert "keys trust" in refused.value.hint


def test_stranger_claiming_a_trusted_key_id_is_bad_signature(signer):
    key, trusted = signer
    bundle = json.loads(attestation.sign(_statement(), Ed25519PrivateKey.generate()))
    bundle["verificationMaterial"]["publicKey"]["hint"] = key_id(key.public_key())
    with pytest.raises(VerificationError) as refused:
        attestation.verify(json.dumps(bundle).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "bad-signature"


def test_bundle_without_key_hint_is_checked_against_every_trusted_key(signer):
    key, trusted = signer
    bundle = json.loads(attestation.sign(_statement(), key))
    del bundle["verificationMaterial"]["publicKey"]["hint"]  # as another tool may write it
    assert attestation.verify(json.dumps(bundle).encode(), trusted=trusted, digest=DIGEST).key_id in trusted
    stranger = json.loads(attestation.sign(_statement(), Ed25519PrivateKey.generate()))
    del stranger["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(VerificationError, match="a key it does not name") as refused:
        attestation.verify(json.dumps(stranger).encode(), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "untrusted-key"


def test_attestation_for_another_digest(signer):
    key, trusted = signer
    with pytest.raises(VerificationError, match="tag was moved") as refused:
        attestation.verify(attestation.sign(_statement(digest=OTHER), key), trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "digest-mismatch"


@pytest.mark.parametrize(
    "verdict, validated, status",
    [("fail", True, "fail"), ("error", True, "error"), ("fail", False, "fail"), (None, False, "unvalidated")],
)
def test_verdict_other_than_pass_is_refused(signer, verdict, validated, status):
    key, trusted = signer
    raw = attestation.sign(_statement(verdict=verdict, validated=validated), key)
    with pytest.raises(VerificationError, match="did not pass validation") as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST, allow_static=True)
    assert refused.value.reason == "verdict" and refused.value.status == status


def test_static_only_is_refused_unless_allowed(signer):
    key, trusted = signer
    raw = attestation.sign(_statement(gpu=False), key)
    with pytest.raises(VerificationError, match="static-only, not gpu-verified") as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "level" and refused.value.status == "static-only"
    assert "gpu-arch" in refused.value.message and "--allow-static" in refused.value.hint
    assert attestation.verify(raw, trusted=trusted, digest=DIGEST, allow_static=True).level == "static-only"


def test_arch_not_covered(signer):
    key, trusted = signer
    raw = attestation.sign(_statement(arches=("gfx90a",)), key)
    with pytest.raises(VerificationError, match="does not run on gfx942") as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=GFX942)
    assert refused.value.reason == "arch"


def test_other_stack_is_refused(signer):
    key, trusted = signer
    with pytest.raises(VerificationError) as refused:
        attestation.verify(attestation.sign(_statement(stack="rocm-6"), key), trusted=trusted, digest=DIGEST, stack="local")
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
        (b"[]", "is not a .* Sigstore bundle"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "holds no DSSE envelope"),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": '
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}}',
            "exactly one DSSE signature",
        ),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": '
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%%", "signatures": [{"sig": "AA=="}]}}',
            "not base64",
        ),
    ],
)
def test_corrupt_bundle(signer, raw, needle):
    _, trusted = signer
    with pytest.raises(VerificationError, match=needle) as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "corrupt"


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "has predicateType"),
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "is not an in-toto"),
        (lambda s: s.update(subject=[{"name": "x", "digest": {"sha512": "ab"}}]), "no subject with a sha256"),
        (lambda s: s["predicate"].update(arches=[]), "no arch list"),
        (lambda s: s["predicate"].update(level="gold"), "level 'gold'"),
        (lambda s: s["predicate"]["report"]["document"].update(verdict="fail"), "does not match its sha256"),
    ],
)
def test_signed_but_malformed_statement_is_corrupt(signer, change, needle):
    """What a trusted key signed is still checked: a buggy or foreign signer's statement is refused."""
    key, trusted = signer
    body = _statement()
    change(body)
    raw = dsse.sign_bundle(canonical_json(body), key)
    with pytest.raises(VerificationError, match=needle) as refused:
        attestation.verify(raw, trusted=trusted, digest=DIGEST)
    assert refused.value.reason == "corrupt"


def test_statement_needs_a_sha256_digest():
    from rocstack.errors import RocstackError

    with pytest.raises(RocstackError, match="not a sha256 manifest digest"):
        _statement(digest="latest")


@pytest.mark.parametrize(
    "report, validated, level, source",
    [
        (_report(), True, "gpu-verified", "derived"),
        (_report(gpu=False), True, "static-only", "derived"),
        (_report(level="static-only"), True, "static-only", "report"),  # the report's own level wins
        (_report(gpu=False, level="gpu-verified"), True, "gpu-verified", "report"),
        (_report(verdict="fail"), True, "unvalidated", "derived"),
        (_report(), False, "unvalidated", "derived"),
        (None, False, "unvalidated", "derived"),
        ({**_report(), "checks": [{"name": "audit:torch", "category": "audit", "status": "pass"}]}, True, "static-only", "derived"),
        ({**_report(), "environment": {"gpu": {"available": False, "reason": "none"}}}, True, "static-only", "derived"),
        ({**_report(), "checks": _report()["checks"][:1] + [{"name": "benchmark:x", "category": "performance", "status": "skip"}]},
         True, "static-only", "derived"),
    ],
)
def test_verification_level(report, validated, level, source):
    found = statement.verification_level(report, validated)
    assert (found.level, found.source) == (level, source), found.reason


def test_static_only_reason_names_the_skipped_checks():
    found = statement.verification_level(_report(gpu=False), True)
    assert found.reason == "GPU checks skipped: gpu-arch, pytest:k[gpu] (no GPU)"


def test_unknown_report_level_is_an_error():
    from rocstack.errors import RocstackError

    with pytest.raises(RocstackError, match="level 'verified'"):
        statement.verification_level(_report(level="verified"), True)


class _Item:
    def __init__(self, content, form=BUNDLE):
        self.content, self.form = content, form


def test_newest_trusted_goes_by_the_signed_creation_time(signer):
    key, trusted = signer
    old, new = _statement(), _statement(verdict="fail")
    old["predicate"]["created"], new["predicate"]["created"] = "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"
    stranger = attestation.sign(_statement(), Ed25519PrivateKey.generate())
    items = [_Item(stranger), _Item(attestation.sign(old, key)), _Item(b"{"), _Item(attestation.sign(new, key))]
    assert attestation.newest_trusted(items, trusted).verdict == "fail"  # listed last, signed newest
    assert attestation.newest_trusted(items[:3], trusted).verdict == "pass"
    with pytest.raises(VerificationError) as refused:
        attestation.newest_trusted(items[:1] + items[2:3], trusted)
    assert refused.value.reason == "untrusted-key"  # the first problem found


def test_newest_trusted_prefers_attestations_of_this_image(signer):
    key, trusted = signer
    own, copied = _statement(), _statement(digest=OTHER)
    own["predicate"]["created"], copied["predicate"]["created"] = "2026-01-01T00:00:00+00:00", "2026-06-01T00:00:00+00:00"
    items = [_Item(attestation.sign(copied, key)), _Item(attestation.sign(own, key))]
    assert attestation.newest_trusted(items, trusted, DIGEST).digest == DIGEST
    assert attestation.newest_trusted(items[:1], trusted, DIGEST).digest == OTHER  # then refused as moved


def test_legacy_envelope_is_read_with_a_derived_level(signer):
    key, trusted = signer
    raw = legacy_envelope(legacy_payload(DIGEST, _report(), stack="local"), key)
    verified = attestation.verify(raw, trusted=trusted, digest=DIGEST, arch=GFX942, stack="local", form=LEGACY)
    assert verified.form == LEGACY and verified.level == "gpu-verified" and verified.verdict == "pass"
    static = legacy_envelope(legacy_payload(DIGEST, _report(gpu=False), stack="local"), key)
    with pytest.raises(VerificationError) as refused:
        attestation.verify(static, trusted=trusted, digest=DIGEST, form=LEGACY)
    assert refused.value.reason == "level"


def test_legacy_envelope_refusals(signer):
    key, trusted = signer
    envelope = json.loads(legacy_envelope(legacy_payload(DIGEST, _report(verdict="fail")), key))
    envelope["payload"]["verdict"] = "pass"
    with pytest.raises(VerificationError) as refused:
        attestation.verify(json.dumps(envelope).encode(), trusted=trusted, digest=DIGEST, form=LEGACY)
    assert refused.value.reason == "bad-signature"
    stranger = legacy_envelope(legacy_payload(DIGEST, _report()), Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError) as refused:
        attestation.verify(stranger, trusted=trusted, digest=DIGEST, form=LEGACY)
    assert refused.value.reason == "untrusted-key"
    with pytest.raises(VerificationError, match="not a rocstack.attestation-envelope/v1") as refused:
        attestation.verify(b"[]", trusted=trusted, digest=DIGEST, form=LEGACY)
    moved = legacy_envelope(legacy_payload(OTHER, _report()), key)
    with pytest.raises(VerificationError) as refused:
        attestation.verify(moved, trusted=trusted, digest=DIGEST, form=LEGACY)
    assert refused.value.reason == "digest-mismatch"


def test_bundle_holds_no_private_key_material(signer):
    key, _ = signer
    from cryptography.hazmat.primitives import serialization

    raw_private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    bundle = attestation.sign(_statement(), key)
    payload = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])
    for blob in (bundle, payload):
        assert raw_private not in blob
        assert base64.b64encode(raw_private) not in blob
        assert raw_private.hex().encode() not in blob
