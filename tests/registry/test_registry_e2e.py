"""End to end on the real engine and Debian's real docker-registry on 127.0.0.1.

Each test pushes small real images (static busybox) with rocstack labels to its own
``rocstack-regtest-*`` repository, then pulls on a clean engine state or provokes one
refusal. Refusals are checked through the real `rocstack` program: one line on stderr,
no traceback, non-zero exit.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from docker.errors import ImageNotFound
from regtest_support import (
    PASSWORD, START_REGISTRY, TEST_STACK, attach_legacy, current_bundle, legacy_envelope, legacy_payload, login,
    replace_attestation, report_for, run_rocstack, with_statement, write_report,
)

import rocstack.registry.pull
from rocstack.registry import artifacts
from rocstack.registry.keys import generate_key, load_signing_key, untrust_key
from rocstack.registry.oci import OCI_INDEX, RegistryClient, parse_registry

pytestmark = pytest.mark.slow


def _client(repo: str) -> RegistryClient:
    return RegistryClient(parse_registry(repo))


def _push(capsys, image, repo, *extra):
    code, out, err = run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, *extra)
    assert code == 0, err
    return out


def _pull(capsys, repo, arch="gfx942", *extra):
    return run_rocstack(capsys, "pull", "--arch", arch, "--stack", TEST_STACK, "--registry", repo, *extra)


def _refused(result, *needles, code=1):
    got, out, err = result
    assert got == code, (out, err)
    # progress lines (stderr, stamped "[   Ns]") may precede a refusal that comes mid-push; the
    # refusal itself is the one error line, and the last
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[")]
    line = lines[-1] if lines else ""
    assert len(lines) == 1 and line.startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in line, line
    return line


def _digest_of(repo: str, tag: str) -> str:
    ref = parse_registry(repo)
    return _client(repo).get_manifest(ref.repository, tag).digest


def _pushed_tag(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("pushed")).rsplit(":", 1)[1]


def test_push_then_pull_by_digest_on_clean_engine(capsys, registry_server, images, rocstack_home, docker_engine):
    key = generate_key("regtest")
    image = images.build("roundtrip", arches="gfx90a,gfx942")
    write_report(rocstack_home, image)
    repo = registry_server.repo("roundtrip")
    out = _push(capsys, image, repo)
    assert f"signed by {key.key_id}" in out and "validated (verdict pass, gpu-verified)" in out
    tag = _pushed_tag(out)
    digest = _digest_of(repo, tag)
    # distribution 2.8 has no referrers API: the attestation is listed by the referrers tag schema's index
    name = parse_registry(repo).repository
    index_tag = artifacts.referrers_tag(digest)
    assert f"(referrers tag {index_tag})" in out
    assert sorted(_client(repo).tags(name)) == sorted([tag, index_tag])  # no cosign-style .att tag any more
    index = json.loads(_client(repo).get_manifest(name, index_tag).raw)
    assert index["mediaType"] == OCI_INDEX and [d["artifactType"] for d in index["manifests"]] == [artifacts.ARTIFACT_TYPE]
    referrer = json.loads(_client(repo).get_manifest(name, index["manifests"][0]["digest"]).raw)
    assert referrer["subject"]["digest"] == digest and referrer["artifactType"] == artifacts.ARTIFACT_TYPE

    images.forget_locally(image.id)
    with pytest.raises(ImageNotFound):
        docker_engine.images.get(image.id)
    code, out, err = _pull(capsys, repo, "gfx942:xnack+")
    assert code == 0, err
    assert f"digest     {digest}" in out and key.key_id in out and "verdict    pass" in out
    assert "arches     gfx90a,gfx942" in out and "torch=2.13.0+cpu" in out
    assert "level      gpu-verified (GPU AMD Instinct MI300X)" in out
    assert f"found via  referrers tag {index_tag[:19]}… (in-toto bundle)" in out
    pulled = docker_engine.images.get(f"{repo}:{tag}")
    assert pulled.id == image.id
    assert docker_engine.images.get(f"rocstack/{TEST_STACK}:{tag}").id == image.id
    assert any(d.endswith(digest) for d in pulled.attrs["RepoDigests"])

    code, out, _ = run_rocstack(capsys, "images", "--registry", repo, "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["digest"], r["verdict"], r["arches"]) for r in rows] == [
        (digest, "pass", ["gfx90a", "gfx942"])
    ]

    listed = subprocess.run(["rocstack", "images", "--registry", repo], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and digest[:19] in listed.stdout  # the installed console command

    images.forget_locally(image.id)
    code, out, err = _pull(capsys, repo, "gfx90a", "--tag", "rocstack-regtest/pulled:mine")
    assert code == 0, err
    assert docker_engine.images.get(image.id).tags == ["rocstack-regtest/pulled:mine"]
    _refused(_pull(capsys, repo, "gfx90a", "--tag", "Not A Name"), "not a valid image name", code=2)


def test_pull_takes_newest_verified_and_skips_newer_unverified(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("newest")
    older, newer, unvalidated = (images.build(n) for n in ("older", "newer", "unvalidated"))
    for image in (older, newer):
        write_report(rocstack_home, image)
        _push(capsys, image, repo)
    out = _push(capsys, unvalidated, repo, "--allow-unvalidated")
    assert "UNVALIDATED (no validation report at" in out
    code, out, err = _pull(capsys, repo)
    assert code == 0, err
    assert f"{newer.id.split(':')[1][:12]}" in out  # the newer verified image's tag names its id
    assert "skipped    newer" in out and "did not pass validation (no validation report at" in out
    # the fallback is said on stderr, naming the newer image passed over and how to refuse instead
    assert "warning: falling back past newer" in err and "--exact" in err
    # --exact: the newest image of the stack or nothing (a tampered newest tag cannot roll a fleet back)
    _refused(_pull(capsys, repo, "gfx942", "--exact"), "--exact: the newest image", "did not pass validation")
    _refused(_pull(capsys, repo, "gfx942", "--no-fallback"), "--exact: the newest image")
    # a bare host searches every repository of the catalog: this test's images are the newest
    code, out, err = _pull(capsys, registry_server.host)
    assert code == 0 and f"rocstack-regtest-newest:gfx942-{newer.id.split(':')[1][:12]}" in out, err
    code, out, _ = run_rocstack(capsys, "images", "--registry", registry_server.host, "--json")
    verdicts = {r["tags"][0]: r["verdict"] for r in json.loads(out) if r["repository"].endswith("regtest-newest")}
    assert sorted(verdicts.values()) == ["pass", "pass", "unvalidated"]


def test_push_refuses_unvalidated_and_failed_images(capsys, registry_server, images, rocstack_home, tmp_path):
    generate_key()
    repo = registry_server.repo("push-refusals")
    image = images.build("push-refusals")
    _refused(run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo), "no validation report at")
    report_dir = write_report(rocstack_home, image, verdict="fail", directory=tmp_path / "failed")
    _refused(
        run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, "--report", str(report_dir)),
        "validation verdict fail (audit.gpu-code)",
        "--allow-unvalidated",
    )
    other = images.build("push-refusals-other")
    wrong = write_report(rocstack_home, other, directory=tmp_path / "other")
    _refused(
        run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, "--report", str(wrong)),
        f"is for image {other.id[:19]}",
        code=2,
    )
    assert _client(repo).tags(parse_registry(repo).repository) == []  # nothing was pushed


def test_refusal_missing_attestation(capsys, registry_server, images, docker_engine):
    generate_key()
    repo = registry_server.repo("missing")
    image = images.build("missing")
    docker_engine.images.get(image.id).tag(repo, "bare")
    docker_engine.images.push(repo, tag="bare")  # pushed around rocstack: no attestation
    _refused(_pull(capsys, repo), "has no attestation", f"{repo}:bare")


def _push_validated(capsys, images, rocstack_home, repo, name, arches="gfx942"):
    image = images.build(name, arches=arches)
    write_report(rocstack_home, image)
    tag = _pushed_tag(_push(capsys, image, repo))
    return image, tag, _digest_of(repo, tag)


def test_refusal_bad_signature(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("badsig")
    _, _, digest = _push_validated(capsys, images, rocstack_home, repo, "badsig", arches="gfx90a")
    # claim an arch the image was not validated for, keeping the signature
    forged = with_statement(current_bundle(repo, digest), lambda s: s["predicate"].update(arches=["gfx90a", "gfx942"]))
    replace_attestation(repo, digest, forged)
    _refused(_pull(capsys, repo), "does not verify", "altered after signing")


def test_refusal_untrusted_key(capsys, registry_server, images, rocstack_home):
    key = generate_key("someone else")
    repo = registry_server.repo("untrusted")
    _push_validated(capsys, images, rocstack_home, repo, "untrusted")
    untrust_key(key.key_id)
    generate_key("mine")  # a trusted key exists, just not the signer's
    _refused(_pull(capsys, repo), f"signed by {key.key_id}, which is not a trusted key", "keys trust")


def test_refusal_attestation_for_another_digest(capsys, registry_server, images, rocstack_home, docker_engine):
    generate_key()
    repo = registry_server.repo("moved")
    _, tag, good_digest = _push_validated(capsys, images, rocstack_home, repo, "moved-good")
    intruder = images.build("moved-intruder")
    docker_engine.images.get(intruder.id).tag(repo, tag)
    docker_engine.images.push(repo, tag=tag)  # the tag now points at another image...
    moved_digest = _digest_of(repo, tag)
    assert moved_digest != good_digest
    replace_attestation(repo, moved_digest, current_bundle(repo, good_digest))  # ...with a copy of the good one
    _refused(_pull(capsys, repo), f"attestation is for image {good_digest[:19]}", "tag was moved")


def test_refusal_verdict_fail(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("verdict")
    image = images.build("verdict")
    write_report(rocstack_home, image, verdict="fail")
    out = _push(capsys, image, repo, "--allow-unvalidated")
    assert "UNVALIDATED (validation verdict fail (audit.gpu-code))" in out
    _refused(_pull(capsys, repo), "did not pass validation", "validate and push a fixed build")


def test_refusal_static_only_unless_allowed(capsys, registry_server, images, rocstack_home, docker_engine):
    generate_key()
    repo = registry_server.repo("static")
    image = images.build("static")
    write_report(rocstack_home, image, gpu=False)  # validated on a machine without a GPU
    out = _push(capsys, image, repo)
    assert "validated (verdict pass, static-only)" in out
    _refused(_pull(capsys, repo), "passed validation static-only, not gpu-verified", "GPU checks skipped: gpu-arch",
             "--allow-static")
    images.forget_locally(image.id)
    result = rocstack.registry.pull.pull("gfx942", stack=TEST_STACK, registry=repo, allow_static=True, say=lambda _: None)
    assert result.verified.level == "static-only" and docker_engine.images.get(image.id)


def test_refusal_arch_not_covered(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("arch")
    _push_validated(capsys, images, rocstack_home, repo, "arch", arches="gfx942:xnack-")
    _refused(_pull(capsys, repo, "gfx942:xnack+"), "built for gfx942:xnack-, which does not run on gfx942:xnack+")
    _refused(_pull(capsys, repo, "gfx90a"), "does not run on gfx90a")


def test_refusal_corrupt_artifact_json(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("corrupt")
    _, _, digest = _push_validated(capsys, images, rocstack_home, repo, "corrupt")
    replace_attestation(repo, digest, b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsse')
    _refused(_pull(capsys, repo), "attestation is not valid JSON")


def test_legacy_attestation_is_still_read(capsys, registry_server, images, rocstack_home, docker_engine):
    """An image pushed by rocstack's first format (envelope under the .att tag) still pulls."""
    generate_key()
    repo = registry_server.repo("legacy")
    client, name = _client(repo), parse_registry(repo).repository
    image = images.build("legacy")
    docker_engine.images.get(image.id).tag(repo, "old")
    docker_engine.images.push(repo, tag="old")
    subject = client.get_manifest(name, "old")
    payload = legacy_payload(subject.digest, report_for(image), repository=repo)
    tag = attach_legacy(client, name, subject, legacy_envelope(payload, load_signing_key()))
    images.forget_locally(image.id)
    code, out, err = _pull(capsys, repo)
    assert code == 0, err
    assert "level      gpu-verified" in out and f"legacy tag {tag[:19]}" in out and "(legacy envelope)" in out
    envelope = json.loads(legacy_envelope(legacy_payload(subject.digest, report_for(image)), load_signing_key()))
    envelope["payload"]["arches"] = ["gfx90a"]  # altered after signing
    attach_legacy(client, name, subject, json.dumps(envelope).encode())
    _refused(_pull(capsys, repo), "does not verify")


def test_refusal_registry_unreachable(capsys, images, rocstack_home):
    import socket

    generate_key()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repo = f"127.0.0.1:{port}/rocstack-regtest-gone"
    _refused(_pull(capsys, repo), f"registry 127.0.0.1:{port} is unreachable", "start-registry.sh", code=2)
    image = images.build("unreachable")
    write_report(rocstack_home, image)
    _refused(run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo), "is unreachable", code=2)


def test_auth_refused_and_accepted(capsys, auth_registry_server, images, rocstack_home, docker_config, docker_engine):
    generate_key()
    repo = auth_registry_server.repo("auth")
    image = images.build("auth")
    write_report(rocstack_home, image)
    push = ("push", "--image", image.ref, "--registry", repo)
    line = _refused(run_rocstack(capsys, *push), "requires authentication", "docker login", code=2)
    login(docker_config, auth_registry_server.host, password="not-the-password")
    line = _refused(run_rocstack(capsys, *push), "refused the credentials of user 'rocstack-regtest-user'", code=2)
    assert "not-the-password" not in line
    _refused(_pull(capsys, repo), "refused the credentials", code=2)

    login(docker_config, auth_registry_server.host)
    outputs = [_push(capsys, image, repo)]
    images.forget_locally(image.id)
    code, out, err = _pull(capsys, repo)
    assert code == 0, err
    outputs += [out, err]
    assert docker_engine.images.get(image.id)
    code, out, err = run_rocstack(capsys, "images", "--registry", repo)
    outputs += [out, err]
    assert all(PASSWORD not in text for text in outputs)


def test_no_private_key_or_credential_in_registry_reports_or_output(
    capsys, auth_registry_server, images, rocstack_home, docker_config
):
    """Everything pushed lands in the registry's storage: grep all of it, and all output.

    The report itself quotes the registry password (as tool output might): the
    attestation made from it must not.
    """
    from cryptography.hazmat.primitives import serialization

    from rocstack.registry.keys import load_signing_key

    generate_key()
    private = load_signing_key()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem_body = "".join(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode().splitlines()[1:-1]
    )
    import base64

    secrets = [raw, raw.hex().encode(), base64.b64encode(raw), pem_body.encode(), PASSWORD.encode()]
    secrets.append(base64.b64encode(f"rocstack-regtest-user:{PASSWORD}".encode()))
    login(docker_config, auth_registry_server.host)
    repo = auth_registry_server.repo("secrets")
    image = images.build("secrets")
    report_path = write_report(rocstack_home, image) / "report.json"
    report = json.loads(report_path.read_text())  # tool output quoting credentials, as evidence may
    report["checks"][0]["evidence"] = f"index https://ci:{PASSWORD}@pypi.example/simple; login {PASSWORD}"
    report_path.write_text(json.dumps(report))
    out = _push(capsys, image, repo)
    code, pull_out, pull_err = _pull(capsys, repo)
    assert code == 0
    stored = [p for p in (auth_registry_server.storage / "docker").rglob("*") if p.is_file()]
    assert len(stored) > 5
    for path in stored:
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets), path
    for text in (out, pull_out, pull_err, (auth_registry_server.storage / "registry.log").read_text()):
        assert not any(secret in text.encode() for secret in secrets)


def test_start_registry_script_is_idempotent_and_checks_arguments(registry_server):
    port = registry_server.host.rsplit(":", 1)[1]
    again = subprocess.run([str(START_REGISTRY), port, str(registry_server.storage)], capture_output=True, text=True)
    assert again.returncode == 0 and "already answers" in again.stdout
    bad = subprocess.run([str(START_REGISTRY), "fifty", "/tmp/x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a number" in bad.stderr


def test_repush_adds_a_referrer_and_the_newest_decides(capsys, registry_server, images, rocstack_home):
    generate_key()
    repo = registry_server.repo("repush")
    image = images.build("repush")
    write_report(rocstack_home, image, gpu=False)  # first validated without a GPU...
    assert "static-only" in _push(capsys, image, repo, "--tag", "t")
    write_report(rocstack_home, image)  # ...then again on one
    assert "gpu-verified" in _push(capsys, image, repo, "--tag", "t")
    digest = _digest_of(repo, "t")
    client, name = _client(repo), parse_registry(repo).repository
    index = json.loads(client.get_manifest(name, artifacts.referrers_tag(digest)).raw)
    assert len(index["manifests"]) == 2 and {d["artifactType"] for d in index["manifests"]} == {artifacts.ARTIFACT_TYPE}
    code, out, err = _pull(capsys, repo)
    assert code == 0 and "level      gpu-verified" in out, err


def test_push_refuses_a_referrers_tag_that_holds_an_image(capsys, registry_server, images, rocstack_home, docker_engine):
    generate_key()
    repo = registry_server.repo("squatted")
    image, tag, digest = _push_validated(capsys, images, rocstack_home, repo, "squatted")
    squatter = images.build("squatter")
    docker_engine.images.get(squatter.id).tag(repo, artifacts.referrers_tag(digest))
    docker_engine.images.push(repo, tag=artifacts.referrers_tag(digest))
    _refused(run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, "--tag", tag),
             "holds something other than an OCI referrers index", "delete it and push again", code=2)
    _refused(_pull(capsys, repo), "has no attestation (none found via referrers tag")
    _refused(run_rocstack(capsys, "push", "--image", image.ref, "--registry", repo, "--tag", artifacts.referrers_tag(digest)),
             "is reserved for attestations", code=2)
