"""The referrers-API path, which Debian's registry (distribution 2.8) does not have.

The boundary is faked in one place only: a client whose registry "indexes" manifests
by their ``subject`` as an OCI 1.1 registry would (recorded on upload, answered by
``referrers``). Blobs, manifests and tags still go to the real docker-registry, and the
real push/pull code runs on top.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from regtest_support import TEST_STACK, report_for, run_rocstack, write_report

import rocstack.registry.pull
import rocstack.registry.push
from rocstack.registry import artifacts, attestation
from rocstack.registry.catalog import judge, scan
from rocstack.registry.keys import generate_key, trusted_keys
from rocstack.registry.oci import RegistryClient, parse_registry

pytestmark = pytest.mark.slow


class ReferrersIndexingClient(RegistryClient):
    index: dict[tuple[str, str], list[dict]] = {}

    def put_manifest(self, repository, reference, raw, media_type):
        digest, _ = super().put_manifest(repository, reference, raw, media_type)
        body = json.loads(raw)
        if "subject" in body:
            entry = {
                "mediaType": media_type,
                "digest": digest,
                "size": len(raw),
                "artifactType": body.get("artifactType"),
                "annotations": body.get("annotations", {}),
            }
            self.index.setdefault((repository, body["subject"]["digest"]), []).append(entry)
        return digest, "subject" in body

    def referrers(self, repository, digest, artifact_type):
        return [d for d in self.index.get((repository, digest), []) if d["artifactType"] == artifact_type]


@pytest.fixture
def referrers_registry(monkeypatch):
    ReferrersIndexingClient.index = {}
    for module in (rocstack.registry.push, rocstack.registry.pull):
        monkeypatch.setattr(module, "RegistryClient", ReferrersIndexingClient)
    return ReferrersIndexingClient


def test_push_and_pull_through_referrers(capsys, registry_server, images, rocstack_home, referrers_registry):
    generate_key()
    repo = registry_server.repo("referrers")
    image = images.build("referrers")
    write_report(rocstack_home, image)
    code, out, err = run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo)
    assert code == 0, err
    assert "(referrers API)" in out
    name = parse_registry(repo).repository
    assert not any(artifacts.is_attestation_tag(t) for t in RegistryClient(parse_registry(repo)).tags(name))
    images.forget_locally(image.id)
    code, out, err = run_rocstack(capsys, "pull", "--arch", "gfx942", "--stack", TEST_STACK, "--registry", repo)
    assert code == 0, err
    assert "found via  referrers API (in-toto bundle)" in out


def test_newest_trusted_referrer_decides_and_strangers_are_skipped(registry_server, images, rocstack_home, docker_engine):
    generate_key()
    repo = registry_server.repo("referrers-many")
    name = parse_registry(repo).repository
    image = images.build("referrers-many")
    docker_engine.images.get(image.id).tag(repo, "t")
    docker_engine.images.push(repo, tag="t")
    client = ReferrersIndexingClient(parse_registry(repo))
    ReferrersIndexingClient.index = {}
    subject = client.get_manifest(name, "t")

    def attach(signing_key, verdict, created):
        statement = attestation.build_statement(
            repository=repo, digest=subject.digest, media_type=subject.media_type, image_id=image.id,
            stack=TEST_STACK, arches=["gfx942"], components=[], report=report_for(image, verdict),
            validated=verdict == "pass",
        )
        statement["predicate"]["created"] = created
        bundle = attestation.sign(statement, signing_key)
        artifacts.attach(client, name, subject, bundle, {"org.opencontainers.image.created": created})

    from rocstack.registry.keys import load_signing_key

    attach(load_signing_key(), "pass", "2026-01-01T00:00:00+00:00")
    attach(Ed25519PrivateKey.generate(), "pass", "2026-06-01T00:00:00+00:00")  # newer, untrusted signer
    broken = {  # newest of all: an artifact of our type whose layer is something else
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifacts.ARTIFACT_TYPE,
        "config": {"mediaType": artifacts.EMPTY_MEDIA_TYPE, "digest": client.put_blob(name, b"{}"), "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": client.put_blob(name, b"hi"), "size": 2}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
        "annotations": {"org.opencontainers.image.created": "2026-07-01T00:00:00+00:00"},
    }
    client.put_manifest(name, "broken", json.dumps(broken).encode(), broken["mediaType"])
    [found] = scan(client, [name])
    assert found.attestation_source == "referrers API" and len(found.attestations) == 3
    assert isinstance(found.attestations[0].content, attestation.VerificationError)  # read, refused, and skipped
    assert judge(found, trusted_keys()).verdict == "pass"  # the stranger's newer one was skipped

    attach(load_signing_key(), "fail", "2026-09-01T00:00:00+00:00")  # a trusted re-validation failed
    [found] = scan(client, [name])
    with pytest.raises(attestation.VerificationError) as refused:
        judge(found, trusted_keys())
    assert refused.value.reason == "verdict"  # the newest trusted verdict wins over the older pass
