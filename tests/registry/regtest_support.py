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


def write_report(home: Path, image: RegtestImage, verdict: str = "pass", directory: Path | None = None) -> Path:
    """A rocstack.validation/v1 report for ``image``, where `invoke validate` would put it."""
    failing = verdict != "pass"
    report = {
        "schema": "rocstack.validation/v1",
        "rocstack_version": "0.1.0",
        "image": {"id": image.id, "repo_digests": [], "tags": [image.ref]},
        "stack": image.stack,
        "arches": image.arches,
        "verdict": verdict,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": 2.5,
        "checks": [
            {"name": "python.imports", "category": "python", "status": "pass", "evidence": "ok", "duration_s": 0.4},
            {
                "name": "audit.gpu-code",
                "category": "audit",
                "status": "fail" if failing else "pass",
                "evidence": "libfoo.so has no gfx942 code object" if failing else "all present",
                "duration_s": 1.1,
            },
            {
                "name": "kernels.correctness",
                "category": "kernel",
                "status": "skip",
                "evidence": "no GPU on this machine",
                "duration_s": 0.0,
            },
        ],
    }
    target = directory or home / "reports" / image.id.split(":", 1)[1]
    target.mkdir(parents=True, exist_ok=True)
    (target / "report.json").write_text(json.dumps(report, indent=2))
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
