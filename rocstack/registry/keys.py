"""ed25519 signing keys: generation, the trusted-key list, loading the signing key.

Layout under ``$ROCSTACK_HOME``: ``keys/<id>.key`` (PKCS#8 PEM, mode 0600, directory
0700) and ``keys/<id>.pub`` (SubjectPublicKeyInfo PEM, shareable); ``config.json``
lists trusted public keys under ``trusted_keys`` and the key ``push`` signs with under
``signing_key``. A key id is ``ed25519:`` + the first 16 hex digits of the SHA-256 of
the raw 32-byte public key, so the id names the key itself, not a file.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic
from rocstack.contracts import rocstack_home
from rocstack.registry.config import load_config, update_config

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(*_RAW)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _file_stem(kid: str) -> str:
    return kid.replace(":", "-")


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_key.public_bytes(*_RAW)).decode()


@dataclass(frozen=True)
class GeneratedKey:
    key_id: str
    private_path: Path
    public_path: Path
    previous_signing_key: str | None


def keys_dir(home: Path | None = None) -> Path:
    return (home or rocstack_home()) / "keys"


def generate_key(name: str = "", home: Path | None = None) -> GeneratedKey:
    """Write a new key pair, trust its public half and make it the signing key."""
    home = home or rocstack_home()
    directory = keys_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    kid = key_id(public)
    private_path = directory / f"{_file_stem(kid)}.key"
    public_path = directory / f"{_file_stem(kid)}.pub"
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(private_path, pem, mode=0o600)  # mkstemp makes it 0600 from the start
    write_atomic(
        public_path,
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        mode=0o644,
    )
    previous = load_config(home).get("signing_key")

    def record(config: dict) -> None:
        config.setdefault("trusted_keys", {})[kid] = _trust_record(public, name or "generated here")
        config["signing_key"] = kid

    update_config(record, home)
    return GeneratedKey(kid, private_path, public_path, previous)


def _trust_record(public: Ed25519PublicKey, name: str) -> dict:
    return {
        "public_key": public_key_b64(public),
        "name": name,
        "added": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file or a file holding the base64 of the raw 32 bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RocstackError(f"cannot read public key file {path}: {exc.strerror}", "pass the .pub file") from None
    if b"PRIVATE KEY" in data:
        raise RocstackError(
            f"{path} holds a private key",
            "trust the public half (the .pub file next to it); never share the .key file",
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, UnsupportedAlgorithm, base64.binascii.Error):
        raise RocstackError(
            f"{path} is not an ed25519 public key",
            "pass a .pub file written by `rocstack keys generate`",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise RocstackError(f"{path} is a {type(key).__name__}, not an ed25519 key", "rocstack signs with ed25519 only")
    return key


def trust_key(path: Path, name: str = "", home: Path | None = None) -> str:
    """Add the public key in ``path`` to the trusted keys; returns its key id."""
    public = read_public_key(path)
    kid = key_id(public)
    update_config(
        lambda config: config.setdefault("trusted_keys", {}).__setitem__(kid, _trust_record(public, name or path.name)),
        home,
    )
    return kid


def untrust_key(kid: str, home: Path | None = None) -> None:
    trusted = load_config(home).get("trusted_keys", {})
    if kid not in trusted:
        known = ", ".join(trusted) or "none"
        raise RocstackError(f"key {kid} is not trusted", f"trusted keys: {known}")
    update_config(lambda config: config["trusted_keys"].pop(kid), home)


def trusted_keys(home: Path | None = None) -> dict[str, Ed25519PublicKey]:
    """Trusted key id -> public key; a record whose key does not match its id is refused."""
    out: dict[str, Ed25519PublicKey] = {}
    for kid, record in load_config(home).get("trusted_keys", {}).items():
        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(record["public_key"], validate=True))
        except (KeyError, TypeError, ValueError):
            raise RocstackError(
                f"trusted key {kid} in {home or rocstack_home()}/config.json is malformed",
                "remove it with `rocstack keys untrust` and trust the .pub file again",
            ) from None
        if key_id(public) != kid:
            raise RocstackError(
                f"trusted key entry {kid} holds a different key ({key_id(public)})",
                "remove it with `rocstack keys untrust` and trust the .pub file again",
            )
        out[kid] = public
    return out


def trusted_key_names(home: Path | None = None) -> dict[str, dict]:
    return dict(load_config(home).get("trusted_keys", {}))


def load_signing_key(path: Path | None = None, home: Path | None = None) -> Ed25519PrivateKey:
    """The key ``push`` signs with: ``path``, else config.json's ``signing_key``.

    Like ssh, refuse a private key file that others can read: it may already have leaked.
    """
    home = home or rocstack_home()
    if path is None:
        kid = load_config(home).get("signing_key")
        if not kid:
            raise RocstackError(
                "no signing key configured",
                "run `rocstack keys generate` (or pass --key FILE)",
            )
        path = keys_dir(home) / f"{_file_stem(kid)}.key"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise RocstackError(
            f"cannot read signing key {path}: {exc.strerror}",
            "run `rocstack keys generate` or pass --key FILE",
        ) from None
    if mode & 0o077:
        raise RocstackError(
            f"signing key {path} is readable by others (mode {mode:04o})",
            f"chmod 600 {path}, and generate a new key if others may have copied it",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise RocstackError(
            f"{path} is not an unencrypted PEM private key",
            "pass a .key file written by `rocstack keys generate`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RocstackError(f"{path} is not an ed25519 private key", "rocstack signs with ed25519 only")
    return key
