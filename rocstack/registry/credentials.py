"""Registry credentials from the Docker client configuration, like docker and other tools.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): ``credHelpers``
(per registry), ``credsStore`` (all registries) and ``auths`` (``auth`` = base64
``user:password``). A credential's ``repr`` never shows the secret, so it cannot leak
into a log line or an error message by accident.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.errors import RocstackError


@dataclass(frozen=True)
class Credential:
    username: str
    secret: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, source={self.source!r})"

    def docker_auth_config(self) -> dict:
        return {"username": self.username, "password": self.secret}


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _load_docker_config(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise RocstackError(f"cannot parse Docker config {path}", "fix the JSON (docker login rewrites it)") from None
    return data if isinstance(data, dict) else {}


def _server_keys(host: str) -> list[str]:
    # docker login writes the bare host; older clients and other tools write URLs.
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v2/", f"http://{host}/v2/", f"https://{host}/v1/"]


def lookup(host: str) -> Credential | None:
    """Credentials for ``host`` (``host:port``), or None when the Docker config has none."""
    path = docker_config_path()
    config = _load_docker_config(path)
    helper = config.get("credHelpers", {}).get(host) or config.get("credsStore")
    if helper:
        found = _from_helper(helper, host)
        if found:
            return found
    auths = config.get("auths", {})
    for key in _server_keys(host):
        entry = auths.get(key)
        if isinstance(entry, dict):
            return _from_auth_entry(entry, host, path)
    return None


def _from_auth_entry(entry: dict, host: str, path: Path) -> Credential | None:
    if entry.get("username") and entry.get("password"):
        return Credential(entry["username"], entry["password"], f"{path} auths")
    encoded = entry.get("auth")
    if not encoded:
        return None
    try:
        user, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        sep = ""
    if not sep:
        raise RocstackError(
            f"the auths entry for {host} in {path} is not base64 'user:password'",
            f"run `docker login {host}` again",
        )
    return Credential(user, secret, f"{path} auths")


def _from_helper(helper: str, host: str) -> Credential | None:
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run([program, "get"], input=host, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise RocstackError(
            f"Docker config names credential helper '{helper}' but {program} is not on PATH",
            f"install {program} or remove credsStore/credHelpers from {docker_config_path()}",
        ) from None
    except subprocess.TimeoutExpired:
        raise RocstackError(f"{program} did not answer within 30 s", "check the credential helper") from None
    if result.returncode != 0:
        return None  # helpers exit non-zero for "no credentials for this server"
    try:
        data = json.loads(result.stdout)
        return Credential(data["Username"], data["Secret"], program)
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RocstackError(f"{program} gave an unreadable answer for {host}", "check the credential helper") from None
