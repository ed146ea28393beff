"""A second Docker engine for the cache tests: Debian sid's dockerd 28 with the containerd image
store, in a container on the test engine (bookworm's 20.10 engine cannot export a registry cache).

The image is the local stack's debootstrap base plus bookworm's iptables/runc and sid's dockerd
and containerd, unpacked from the .debs pinned in scripts/oci-tools.txt (fetched into the test
cache by scripts/fetch-oci-tools.sh). The container shares no network with the host: a
docker-registry runs inside it on 127.0.0.1:5000, where the inner engine's BuildKit imports and
exports the cache; the host reaches the inner engine through a unix socket in a bind-mounted
folder, as a docker context (so buildx sees it as a docker-driver builder). Every capability
but CAP_SYS_RESOURCE (this sandbox withholds it, so --privileged fails) and no seccomp or
AppArmor profile let dockerd mount and run containers inside.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "scripts" / "oci-tools.txt"
REGISTRY = "127.0.0.1:5000"  # inside the container
BINARIES = {"docker.io": ("usr/sbin/dockerd", "usr/sbin/docker-proxy"),
            "containerd": ("usr/bin/containerd", "usr/bin/containerd-shim-runc-v2")}
ENTRYPOINT = """#!/bin/sh
set -e
mkdir -p /var/lib/registry
printf 'version: 0.1\\nlog:\\n  level: warn\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/registry\\nhttp:\\n  addr: %s\\n' "$REGISTRY" > /etc/registry.yml
docker-registry serve /etc/registry.yml > /var/log/registry.log 2>&1 &
exec dockerd --host=unix:///run/rocstack-dind/docker.sock > /var/log/dockerd.log 2>&1
"""
DAEMON = {"features": {"containerd-snapshotter": True}, "storage-driver": "overlayfs"}


def _pinned(package: str) -> Path:
    for line in PINS.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == package:
            cache = Path(os.environ.get("ROCSTACK_TEST_CACHE") or Path.home() / ".cache" / "rocstack-tests")
            folder = cache / "oci-tools" / f"{fields[0]}_{fields[1]}"
            if not folder.is_dir():
                pytest.skip(f"{package} {fields[1]} is not in the test cache: run bash scripts/fetch-oci-tools.sh")
            return folder
    raise AssertionError(f"{package} is not pinned in {PINS}")


def _context_tar() -> bytes:
    registry = shutil.which("docker-registry")
    if not registry:
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for package, paths in BINARIES.items():
            folder = _pinned(package)
            for rel in paths:
                tar.add(str(folder / rel), arcname=f"bin/{Path(rel).name}")
        tar.add(registry, arcname="bin/docker-registry")
        for name, data, mode in (("entrypoint.sh", ENTRYPOINT.encode(), 0o755),
                                 ("daemon.json", json.dumps(DAEMON).encode(), 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_image(client, base: str, tag: str) -> str:
    dockerfile = (
        f"FROM {base}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends iptables runc ca-certificates "
        "&& rm -rf /var/lib/apt/lists/*\n"
        "COPY bin/ /usr/local/bin/\nCOPY daemon.json /etc/docker/daemon.json\nCOPY entrypoint.sh /entrypoint.sh\n"
        # an anonymous volume on the host's disk: overlayfs cannot stack on the container's own overlay
        "VOLUME /var/lib/docker\n"
        f"ENV REGISTRY={REGISTRY}\nENTRYPOINT [\"/entrypoint.sh\"]\n"
    )
    context = io.BytesIO()
    payload = _context_tar()
    with tarfile.open(fileobj=context, mode="w") as tar:
        with tarfile.open(fileobj=io.BytesIO(payload)) as inner:
            for member in inner.getmembers():
                tar.addfile(member, inner.extractfile(member))
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return image.id


@dataclass
class InnerEngine:
    container: str
    socket: Path
    context: str  # docker context (and docker-driver builder) name

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    def docker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.address, *args], capture_output=True, text=True, **kwargs)


def start(client, image: str, workdir: Path) -> InnerEngine:
    run_dir = workdir / "run"
    run_dir.mkdir(parents=True)
    name = f"rocstack-buildtest-dind-{uuid.uuid4().hex[:8]}"
    host_config = client.api.create_host_config(
        cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        binds={str(run_dir): {"bind": "/run/rocstack-dind", "mode": "rw"},
               "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
    )
    # what `docker run --security-opt systempaths=unconfined` sends: /proc/sys writable, so the
    # inner engine can configure its containers' network interfaces
    host_config.update({"MaskedPaths": [], "ReadonlyPaths": []})
    created = client.api.create_container(image, name=name, host_config=host_config, labels={"io.rocstack.test": "dind"})
    client.api.start(created["Id"])
    container = client.containers.get(created["Id"])
    engine = InnerEngine(container.id, run_dir / "docker.sock", name)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if engine.socket.exists() and engine.docker("version", "--format", "{{.Server.Version}}").returncode == 0:
            break
        container.reload()
        if container.status != "running":
            raise AssertionError(f"the inner engine exited: {container.logs().decode()[-2000:]}")
        time.sleep(1)
    else:
        raise AssertionError("the inner engine did not answer within 90 s")
    subprocess.run(["docker", "context", "create", name, "--docker", f"host={engine.address}"], check=True,
                   capture_output=True)
    return engine


def stop(client, engine: InnerEngine) -> None:
    subprocess.run(["docker", "context", "rm", "-f", engine.context], capture_output=True)
    container = client.containers.get(engine.container)
    container.remove(force=True, v=True)


def load(client, engine: InnerEngine, reference: str) -> None:
    """Copy an image of the test engine into the inner one (docker save | docker load)."""
    save = subprocess.Popen(["docker", "save", reference], stdout=subprocess.PIPE)
    done = subprocess.run(["docker", "-H", engine.address, "load"], stdin=save.stdout, capture_output=True, text=True)
    save.wait()
    assert save.returncode == 0 and done.returncode == 0, done.stderr
