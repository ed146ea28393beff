"""Independent verification: Debian's cosign and oras read what `rocstack push` attached.

Each test pushes a small real image through the `rocstack` program to Debian's
docker-registry (no referrers API: the referrers tag schema is the path), then runs
cosign ``verify-attestation --key <our .pub> --insecure-ignore-tlog --type <predicateType>``
and ``oras discover``. cosign 3 reads Sigstore bundles from OCI referrers by default;
cosign 2 reads only its legacy ``.att`` tag unless given ``--new-bundle-format``, and then
needs a trusted root file (it would fetch the public-good one over the network): an
empty one is enough for key-based verification. Tampered attestations must be refused
by cosign as well. The tools come from scripts/fetch-oci-tools.sh (skipped without them).
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from oci_tools import pins
from regtest_support import current_bundle, replace_attestation, run_rocstack, with_statement, write_report

from rocstack.registry import artifacts, attestation
from rocstack.registry.keys import generate_key
from rocstack.registry.oci import RegistryClient, parse_registry
from rocstack.registry.statement import PREDICATE_TYPE

pytestmark = pytest.mark.slow
COSIGNS = pins("cosign")
SIGNATURE_REFUSED = "no matching attestations: failed to verify signature"
EMPTY_TRUSTED_ROOT = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}


@pytest.fixture
def pushed(capsys, registry_server, images, rocstack_home, request):
    """An image pushed with its attestation by `rocstack push`; (image ref, digest, public key path)."""
    key = generate_key("cosign-test")
    name = request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")[:40]
    image = images.build(f"cosign-{name}")
    write_report(rocstack_home, image)
    repo = registry_server.repo(f"cosign-{name}")
    code, out, err = run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, "--tag", "t")
    assert code == 0, err
    digest = RegistryClient(parse_registry(repo)).get_manifest(parse_registry(repo).repository, "t").digest
    return f"{repo}:t", digest, key.public_path


def _cosign(pin, ref, public_key, tmp_path, predicate_type=PREDICATE_TYPE):
    binary = pin.require()
    args = [str(binary), "verify-attestation", "--key", str(public_key), "--insecure-ignore-tlog",
            "--type", predicate_type, "--allow-http-registry"]
    if pin.version.startswith("2."):
        root = tmp_path / "trusted_root.json"
        root.write_text(json.dumps(EMPTY_TRUSTED_ROOT))
        args += ["--new-bundle-format", "--trusted-root", str(root)]
    home = tmp_path / "cosign-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    return subprocess.run(args + [ref], capture_output=True, text=True, timeout=120, env=env)


def _statements(stdout: str) -> list[dict]:
    """cosign prints each verified attestation as a DSSE envelope, one JSON per line."""
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("pin", COSIGNS, ids=[p.label for p in COSIGNS])
def test_cosign_verifies_the_pushed_attestation(pin, pushed, tmp_path):
    ref, digest, public_key = pushed
    done = _cosign(pin, ref, public_key, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "The signatures were verified against the specified public key" in done.stderr
    [statement] = _statements(done.stdout)
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}
    assert statement["predicate"]["level"] == "gpu-verified" and statement["predicate"]["verdict"] == "pass"
    by_digest = _cosign(pin, f"{ref.rsplit(':', 1)[0]}@{digest}", public_key, tmp_path)
    assert by_digest.returncode == 0, by_digest.stderr


@pytest.mark.parametrize("pin", COSIGNS, ids=[p.label for p in COSIGNS])
def test_cosign_refuses_a_tampered_attestation(pin, pushed, tmp_path):
    ref, digest, public_key = pushed
    repo = ref.rsplit(":", 1)[0]
    forged = with_statement(current_bundle(repo, digest), lambda s: s["predicate"].update(arches=["gfx90a", "gfx950"]))
    replace_attestation(repo, digest, forged)  # altered, signature kept
    done = _cosign(pin, ref, public_key, tmp_path)
    assert done.returncode != 0 and SIGNATURE_REFUSED in done.stderr, done.stderr


@pytest.mark.parametrize("pin", COSIGNS, ids=[p.label for p in COSIGNS])
def test_cosign_refuses_another_signer_and_another_predicate_type(pin, pushed, tmp_path):
    ref, digest, public_key = pushed
    wrong_type = _cosign(pin, ref, public_key, tmp_path, predicate_type="https://slsa.dev/provenance/v1")
    assert wrong_type.returncode != 0 and "none of the attestations matched the predicate type" in wrong_type.stderr
    repo = ref.rsplit(":", 1)[0]
    statement = json.loads(base64.b64decode(json.loads(current_bundle(repo, digest))["dsseEnvelope"]["payload"]))
    replace_attestation(repo, digest, attestation.sign(statement, Ed25519PrivateKey.generate()))
    done = _cosign(pin, ref, public_key, tmp_path)
    assert done.returncode != 0 and SIGNATURE_REFUSED in done.stderr, done.stderr


def test_oras_discover_lists_the_referrer(pushed, tmp_path):
    [pin] = pins("oras")
    ref, digest, _ = pushed
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    done = subprocess.run([str(pin.require()), "discover", "--plain-http", "--format", "json", ref],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["digest"] == digest
    [referrer] = listing["referrers"]
    assert referrer["artifactType"] == artifacts.ARTIFACT_TYPE
    assert referrer["annotations"]["dev.sigstore.bundle.predicateType"] == PREDICATE_TYPE
    repo = ref.rsplit(":", 1)[0]
    name = parse_registry(repo).repository
    manifest = json.loads(RegistryClient(parse_registry(repo)).get_manifest(name, referrer["digest"]).raw)
    assert manifest["subject"]["digest"] == digest
