"""Any buildx builder: find docker buildx, resolve ``--builder NAME``, say where images land.

``docker buildx`` (Debian's docker-buildx plugin, installed by scripts/setup.sh) drives
every kind of BuildKit: the engine's own (driver ``docker``, one per docker context), a
remote buildkitd (``remote``), a BuildKit container (``docker-container``) or pods
(``kubernetes``). A builder is checked before any work: an unknown name and a builder
that does not answer are one-line errors. A ``docker``-driver builder of another context
only runs as ``docker --context NAME buildx ...`` (buildx refuses ``--builder`` for it),
and its ``--load`` lands in that context's engine, where rocstack then records the image.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from rocstack.engine import _candidates
from rocstack.errors import EngineError

INSTALL_HINT = ("install the buildx plugin: `bash scripts/setup.sh` fetches Debian's docker-buildx "
                "(scripts/fetch-oci-tools.sh), or put docker-buildx in ~/.docker/cli-plugins")
TIMEOUT_S = 90


@dataclass(frozen=True)
class BuildxCli:
    docker: str  # the docker client whose buildx plugin answers
    version: str  # buildx's version line


@lru_cache(maxsize=1)
def buildx_cli() -> BuildxCli:
    tried = []
    for cli in _candidates():
        try:
            done = subprocess.run([cli, "buildx", "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{cli} ({exc.__class__.__name__})")
            continue
        if done.returncode == 0:
            return BuildxCli(cli, done.stdout.strip())
        tried.append(f"{cli} (no buildx plugin)")
    raise EngineError("docker buildx is not installed" + (f": tried {', '.join(tried)}" if tried else ""), INSTALL_HINT)


@dataclass(frozen=True)
class Builder:
    """A buildx builder as ``docker buildx inspect`` reports it."""

    name: str  # "" for the current context's default builder
    driver: str
    endpoint: str
    status: str
    buildkit: str
    engine_host: str | None  # docker driver: the docker host of its context (where --load lands)

    def argv(self, cli: BuildxCli, *command: str) -> list[str]:
        """``docker ... buildx COMMAND`` addressed to this builder."""
        if not self.name:
            return [cli.docker, "buildx", *command]
        if self.driver == "docker":
            return [cli.docker, "--context", self.endpoint, "buildx", *command]
        return [cli.docker, "buildx", *command, "--builder", self.name]

    @property
    def loads_into_other_engine(self) -> bool:
        return self.driver == "docker" and bool(self.name)

    @property
    def can_export_cache(self) -> bool:
        """The docker driver exports registry caches only with the containerd image store (checked by buildx itself)."""
        return self.driver != "docker"

    def describe(self) -> str:
        label = self.name or "default"
        return f"builder {label} (driver {self.driver}, endpoint {self.endpoint}, BuildKit {self.buildkit or '?'})"


def _field(text: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}:\s*(.*)$", text, re.M)
    return match.group(1).strip() if match else ""


def parse_inspect(name: str, text: str) -> tuple[str, str, str, str, str]:
    """(driver, endpoint, status, buildkit, error) from ``docker buildx inspect`` text."""
    nodes = text.split("Nodes:", 1)[1] if "Nodes:" in text else ""
    return (_field(text, "Driver"), _field(nodes, "Endpoint"), _field(nodes, "Status"),
            _field(nodes, "BuildKit version") or _field(nodes, "BuildKit"), _field(text, "Error") or _field(nodes, "Error"))


def _context_host(cli: BuildxCli, context: str) -> str | None:
    try:
        done = subprocess.run([cli.docker, "context", "inspect", context, "--format", "{{json .Endpoints.docker.Host}}"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    host = json.loads(done.stdout.strip() or "null")
    return host or None


def resolve_builder(name: str | None) -> Builder:
    """Check ``name`` (None/"": the current context's builder) answers; one-line errors otherwise."""
    cli = buildx_cli()
    argv = [cli.docker, "buildx", "inspect", "--bootstrap", *([name] if name else [])]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EngineError(f"builder {name or 'default'} did not answer within {TIMEOUT_S} s",
                          "check it with `docker buildx inspect --bootstrap`, or pick another with --builder") from None
    text = done.stdout + "\n" + done.stderr
    if done.returncode != 0 and re.search(r'no builder .* found', text):
        known = _builder_names(cli)
        raise EngineError(f"unknown builder '{name}'",
                          f"known builders: {', '.join(known) or 'none'} (`docker buildx ls`; create one with "
                          f"`docker buildx create`)")
    driver, endpoint, status, buildkit, error = parse_inspect(name or "", done.stdout)
    if done.returncode != 0 or error or (status and status != "running"):
        reason = error or _last_error(done.stderr) or f"status {status or 'unknown'}"
        raise EngineError(f"builder {name or 'default'} is unreachable: {reason}",
                          "start it (`docker buildx inspect --bootstrap NAME`), or pick another with --builder")
    host = _context_host(cli, endpoint) if driver == "docker" else None
    return Builder(name or "", driver, endpoint, status, buildkit, host)


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [""])[-1].removeprefix("ERROR:").strip()[:200]


def _builder_names(cli: BuildxCli) -> list[str]:
    try:
        done = subprocess.run([cli.docker, "buildx", "ls", "--format", "json"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = []
    for line in done.stdout.splitlines():
        try:
            names.append(json.loads(line)["Name"])
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(set(names))
