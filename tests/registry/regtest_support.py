"""Helpers for the registry tests: real docker-registry servers, small real images, reports.

Everything created here is named ``rocstack-regtest*`` and removed at the end: images
by the ids this session built, registries by their pid and storage directory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_REGISTRY = REPO / "scripts" / "start-registry.sh"
BUSYBOX = Path("/bin/busybox")
TEST_STACK = "rocstack-regtest"
USER, PASSWORD = "rocstack-regtest-user", "s3cret-" + uuid.uuid4().hex


@dataclass(frozen=True)
class RegistryServer:
    host: str  # 127.0.0.1:PORT
    storage: Path

    def repo(self, name: str) -> str:
        return f"{self.host}/rocstack-regtest-{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_registry(storage: Path, htpasswd: Path | None = None) -> RegistryServer:
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")
    port = _free_port()
    args = [str(START_REGISTRY), str(port), str(storage)] + ([str(htpasswd)] if htpasswd else [])
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)
    return RegistryServer(f"127.0.0.1:{port}", storage)


def stop_registry(server: RegistryServer) -> None:
    pid = int((server.storage / "registry.pid").read_text())
    os.kill(pid, signal.SIGTERM)


def login(docker_config: Path, host: str, user: str = USER, password: str = PASSWORD) -> None:
    """What `docker login` writes: auths[host].auth = base64(user:password)."""
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))


@dataclass(frozen=True)
class RegtestImage:
    ref: str
    id: str
    stack: str
    arches: list[str]


class ImageFactory:
    """Builds small real images (static busybox + a unique file) with rocstack labels."""

    def __init__(self, client):
        self.client = client
        self.created: list[str] = []

    def build(self, name: str, arches: str = "gfx942", stack: str = TEST_STACK) -> RegtestImage:
        if not BUSYBOX.exists():
            pytest.skip("static busybox missing (apt-get install -y busybox-static)")
        variant = f"{name}-{uuid.uuid4().hex}".encode()
        manifest = {
            "schema": "rocstack.build-manifest/v1",
            "stack": stack,
            "arches": arches.split(","),
            "components": [
                {"name": "rocstack-kernels", "version": "0.1.0", "ref": "local", "source_sha256": "ab" * 32},
                {"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None},
            ],
            "base_image_id": "sha256:" + "0" * 64,
            "tools": {},
            "stages": {},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = (
                b"FROM scratch\nCOPY busybox /bin/busybox\nCOPY variant /etc/rocstack-regtest-variant\n"
                b'CMD ["/bin/busybox", "cat", "/etc/rocstack-regtest-variant"]\n'
            )
            for member, data in (("Dockerfile", dockerfile), ("variant", variant)):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            tar.add(str(BUSYBOX), arcname="busybox")
        context.seek(0)
        ref = f"rocstack-regtest/{stack}:{name}"
        image, _ = self.client.images.build(
            fileobj=context,
            custom_context=True,
            tag=ref,
            rm=True,
            labels={
                "io.rocstack.stack": stack,
                "io.rocstack.arches": arches,
                "io.rocstack.components": json.dumps({c["name"]: c["ref"] for c in manifest["components"]}),
                "io.rocstack.manifest": json.dumps(manifest, separators=(",", ":")),
            },
        )
        self.created.append(image.id)
        return RegtestImage(ref, image.id, stack, arches.split(","))

    def forget_locally(self, image_id: str) -> None:
        """Clean engine state for one image: remove it with every tag it has."""
        self.client.images.remove(image_id, force=True)

    def cleanup(self) -> None:
        from docker.errors import ImageNotFound

        for image_id in self.created:
            try:
                self.client.images.remove(image_id, force=True)
            except ImageNotFound:
                pass


GPU = {"available": True, "vendor": "amd", "name": "AMD Instinct MI300X", "arch": "gfx942",
       "target_id": "gfx942:sramecc+:xnack-", "count": 1, "reason": None}
NO_GPU = {"available": False, "vendor": None, "name": None, "arch": None, "target_id": None, "count": 0,
          "reason": "no /dev/kfd on this host"}


def report_for(image: RegtestImage, verdict: str = "pass", gpu: bool = True) -> dict:
    """A rocstack.validation/v1 report for ``image``; ``gpu``: its GPU checks ran (else skipped)."""
    failing = verdict != "pass"
    gpu_status = "pass" if gpu else "skip"
    gpu_evidence = "gfx942 device runs the image's code" if gpu else "no GPU on this machine"
    return {
        "schema": "rocstack.validation/v1",
        "rocstack_version": "0.1.0",
        "image": {"id": image.id, "repo_digests": [], "tags": [image.ref]},
        "stack": image.stack,
        "arches": image.arches,
        "verdict": verdict,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": 2.5,
        "environment": {"python": "3.11.2", "gpu": GPU if gpu else NO_GPU},
        "gpu_access": {"vendor": "amd" if gpu else None, "reason": "test", "docker_options": {}},
        "checks": [
            {"name": "python.imports", "category": "python", "status": "pass", "evidence": "ok", "duration_s": 0.4},
            {
                "name": "audit.gpu-code",
                "category": "audit",
                "status": "fail" if failing else "pass",
                "evidence": "libfoo.so has no gfx942 code object" if failing else "all present",
                "duration_s": 1.1,
            },
            {"name": "gpu-arch", "category": "python", "status": gpu_status, "evidence": gpu_evidence, "duration_s": 0.1},
            {
                "name": "pytest:rocstack-kernels[gpu]",
                "category": "correctness",
                "status": gpu_status,
                "evidence": gpu_evidence,
                "duration_s": 0.0,
            },
        ],
    }


def write_report(
    home: Path, image: RegtestImage, verdict: str = "pass", directory: Path | None = None, gpu: bool = True
) -> Path:
    """Write ``report_for(image)`` where `invoke validate` would put it; returns the directory."""
    target = directory or home / "reports" / image.id.split(":", 1)[1]
    target.mkdir(parents=True, exist_ok=True)
    (target / "report.json").write_text(json.dumps(report_for(image, verdict, gpu), indent=2))
    return target


def run_rocstack(capsys, *args: str) -> tuple[int, str, str]:
    """Run the `rocstack` program in this process; returns (exit code, stdout, stderr)."""
    from rocstack.cli.program import main

    capsys.readouterr()
    try:
        main(["rocstack", *args])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
def legacy_payload(digest: str, report: dict | None, *, stack: str = TEST_STACK, arches=("gfx942",),
                   repository: str = "127.0.0.1:5000/rocstack") -> dict:
    """A payload in rocstack's first attestation format (rocstack.attestation/v1), as push wrote it."""
    from rocstack.registry import legacy

    return {
        "schema": legacy.PAYLOAD_SCHEMA,
        "subject": {"repository": repository, "digest": digest,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json"},
        "image_id": (report or {}).get("image", {}).get("id", "sha256:" + "c" * 64),
        "stack": stack,
        "arches": list(arches),
        "components": [{"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu", "source_sha256": None}],
        "validated": bool(report and report.get("verdict") == "pass"),
        "verdict": report.get("verdict") if report else None,
        "unvalidated_reason": None if report else "no validation report at /x",
        "validation": report,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rocstack_version": "0.1.0",
    }


def legacy_envelope(payload: dict, private_key) -> bytes:
    """The first format's envelope: ed25519 over DOMAIN + canonical_json(payload)."""
    import base64

    from rocstack.registry import legacy
    from rocstack.registry.keys import key_id
    from rocstack.registry.refusals import canonical_json

    signature = private_key.sign(legacy.DOMAIN + canonical_json(payload))
    return canonical_json({
        "schema": legacy.ENVELOPE_SCHEMA,
        "payload": payload,
        "signatures": [{"keyid": key_id(private_key.public_key()), "sig": base64.b64encode(signature).decode()}],
    })


def attach_legacy(client, repository: str, subject, envelope: bytes) -> str:
    """Store ``envelope`` as the first format did: an artifact under the ``sha256-<hex>.att`` tag."""
    from rocstack.registry import artifacts, legacy
    from rocstack.registry.oci import OCI_MANIFEST

    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": legacy.MEDIA_TYPE,
        "config": {"mediaType": artifacts.EMPTY_MEDIA_TYPE, "digest": client.put_blob(repository, b"{}"), "size": 2},
        "layers": [{"mediaType": legacy.MEDIA_TYPE, "digest": client.put_blob(repository, envelope),
                    "size": len(envelope)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
        "annotations": {"org.opencontainers.image.created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    tag = legacy.legacy_tag(subject.digest)
    client.put_manifest(repository, tag, json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)
    return tag


def with_statement(bundle: bytes, change) -> bytes:
    """The bundle with its statement altered by ``change`` and the original signature kept."""
    import base64

    from rocstack.registry.refusals import canonical_json

    body = json.loads(bundle)
    statement = json.loads(base64.b64decode(body["dsseEnvelope"]["payload"]))
    change(statement)
    body["dsseEnvelope"]["payload"] = base64.b64encode(canonical_json(statement)).decode()
    return json.dumps(body).encode()


def _client_and_name(repo: str):
    from rocstack.registry.oci import RegistryClient, parse_registry

    ref = parse_registry(repo)
    return RegistryClient(ref), ref.repository


def current_bundle(repo: str, digest: str) -> bytes:
    """The one attestation `push` attached to ``digest`` in ``repo`` (HOST/REPO)."""
    from rocstack.registry import artifacts

    client, name = _client_and_name(repo)
    [found] = artifacts.find(client, name, digest).items
    return found.content


def replace_attestation(repo: str, digest: str, bundle: bytes) -> None:
    """Make ``bundle`` the only referrer listed for ``digest`` (as an attacker with push rights could)."""
    from rocstack.registry import artifacts
    from rocstack.registry.oci import OCI_INDEX

    client, name = _client_and_name(repo)
    attached = artifacts.attach(client, name, client.get_manifest(name, digest), bundle, {})
    tag = artifacts.referrers_tag(digest)
    index = json.loads(client.get_manifest(name, tag).raw)
    index["manifests"] = [d for d in index["manifests"] if d["digest"] == attached.manifest_digest]
    client.put_manifest(name, tag, json.dumps(index).encode(), OCI_INDEX)
