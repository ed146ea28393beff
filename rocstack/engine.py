"""Access to the Docker engine, for every subsystem: imaging, validate and registry.

The Docker SDK speaks the engine API but cannot drive BuildKit sessions (secrets,
cache mounts), so builds go through a docker CLI that has BuildKit built in: a
pre-23 client with ``DOCKER_BUILDKIT=1`` or any client with the buildx plugin.
Everything else (inspect, import, tag, history, run) goes through the SDK.
What rocstack knows about a local image is read once, by ``image_facts``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import docker
from docker.errors import APIError, DockerException, ImageNotFound

from rocstack.contracts import ImageLabels, parse_labels
from rocstack.errors import EngineError, RocstackError

START_HINT = (
    "start one with scripts/start-dockerd.sh (needs Debian's engine: apt-get install -y docker.io), "
    "or point DOCKER_HOST at a running engine"
)


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def connect(timeout: int = 600, address: str | None = None) -> docker.DockerClient:
    """A client for a Docker engine that answers, or a one-line EngineError saying how to get one.

    ``address``: another engine than $DOCKER_HOST's (a docker-driver buildx builder's context)."""
    address = address or engine_address()
    if address.startswith("unix://") and not os.path.exists(address[len("unix://"):]):
        raise EngineError(f"no Docker engine: socket {address[len('unix://'):]} does not exist", START_HINT)
    try:
        client = docker.DockerClient(base_url=address, timeout=timeout)
        client.ping()
    except DockerException as exc:
        reason = _short_reason(exc)
        if "Permission denied" in reason:
            raise EngineError(
                f"no permission to use the Docker engine at {address}",
                "run as root or add your user to the docker group",
            ) from None
        raise EngineError(f"the Docker engine at {address} does not answer ({reason})", START_HINT) from None
    return client


@dataclass(frozen=True)
class ImageFacts:
    """A local image as rocstack sees it: identity, names, labels (raw and parsed)."""

    id: str
    tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    labels: dict
    rocstack: ImageLabels
    os: str = "linux"
    architecture: str = "amd64"

    @property
    def id_hex(self) -> str:
        return self.id.split(":", 1)[-1]

    def identity(self) -> dict:
        """The image part of a validation report."""
        return {"id": self.id, "repo_digests": list(self.repo_digests), "tags": list(self.tags)}


def image_facts(client: docker.DockerClient, reference: str) -> ImageFacts:
    """Inspect ``reference`` in the engine; a missing image is a one-line error saying how to get one."""
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        raise RocstackError(
            f"image {reference!r} is not in the local engine",
            "build it with `rocstack build --arch ...`, pull it with `rocstack pull` or `docker pull`, "
            "or check `docker images`",
        ) from None
    except APIError as exc:
        raise EngineError(f"the engine refused to inspect {reference!r}: {exc.explanation or exc}",
                          "check the image reference") from None
    attrs = image.attrs
    labels = dict((attrs.get("Config") or {}).get("Labels") or {})
    return ImageFacts(image.id, tuple(image.tags), tuple(attrs.get("RepoDigests") or ()), labels,
                      parse_labels(labels), attrs.get("Os") or "linux", attrs.get("Architecture") or "amd64")


def find_by_label(client: docker.DockerClient, tag: str, label: str, value: str) -> str | None:
    """The id of ``tag`` when its ``label`` is ``value`` (an image made from the same inputs: reuse it)."""
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    return image.id if labels.get(label) == value else None


def _short_reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    match = re.search(r"\(([^()]*(?:refused|denied|No such file|timed out)[^()]*)\)", text)
    return (match.group(1) if match else text)[:160]


@dataclass(frozen=True)
class BuildKitCli:
    """How to start a BuildKit build: the argv up to the build flags and extra environment."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    version: str

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(dict(self.env))
        return env


def _client_major(cli: str) -> tuple[int, str] | None:
    try:
        out = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version (\d+)\.(\d+)\.(\S+?),", out)
    if not match:
        return None
    return int(match.group(1)), f"{match.group(1)}.{match.group(2)}.{match.group(3)}"


def _has_buildx(cli: str) -> bool:
    try:
        return subprocess.run([cli, "buildx", "version"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _candidates() -> list[str]:
    chosen = os.environ.get("ROCSTACK_DOCKER_CLI")
    if chosen:
        return [chosen]
    found = []
    for path in (shutil.which("docker"), "/usr/bin/docker", "/usr/local/bin/docker"):
        if path and os.path.exists(path) and os.path.realpath(path) not in map(os.path.realpath, found):
            found.append(path)
    return found


@lru_cache(maxsize=1)
def buildkit_cli() -> BuildKitCli:
    """Pick a docker CLI able to run BuildKit builds (checked once per process)."""
    tried = []
    for cli in _candidates():
        version = _client_major(cli)
        if version is None:
            tried.append(f"{cli} (not a docker client)")
            continue
        major, text = version
        if major < 23:  # BuildKit is built into these clients behind DOCKER_BUILDKIT=1
            return BuildKitCli((cli, "build"), (("DOCKER_BUILDKIT", "1"),), text)
        if _has_buildx(cli):
            return BuildKitCli((cli, "buildx", "build", "--load"), (), text)
        tried.append(f"{cli} {text} (no buildx plugin)")
    raise EngineError(
        "no docker CLI that can run BuildKit builds" + (f": tried {', '.join(tried)}" if tried else ""),
        "install Debian's docker.io (its 20.10 client has BuildKit built in) or the buildx plugin; "
        "ROCSTACK_DOCKER_CLI=/path/to/docker picks a client",
    )
