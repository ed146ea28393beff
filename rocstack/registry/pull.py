"""``pull``: the newest image of a stack whose attestation verifies for an arch.

Candidates are the registry's images labelled with the stack, newest first; the first
whose attestation passes every check (trusted signature, digest binding, verdict pass,
level gpu-verified unless ``allow_static``, arch covered) is pulled *by digest*, so the
engine fetches exactly the manifest the signature names, whatever the tags point at by then. If none passes, the one-line
refusal lists why each candidate was rejected.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Callable

from rocstack.arches import parse_target_id
from rocstack.engine import connect
from rocstack.errors import RocstackError
from rocstack.registry import transfer
from rocstack.registry.attestation import Verified, VerificationError
from rocstack.registry.catalog import RemoteImage, judge, scan
from rocstack.contracts import DEFAULT_STACK, rocstack_home
from rocstack.registry.config import default_registry
from rocstack.registry.keys import trusted_key_names, trusted_keys
from rocstack.registry.oci import RegistryClient, RegistryRef, parse_registry

MAX_REASONS = 5
# [host[:port]/]name[/name...][:tag], lowercase names as docker requires
_LOCAL_NAME_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


@dataclass
class PullResult:
    registry: RegistryRef
    image: RemoteImage
    verified: Verified
    signer_name: str
    local_tags: list[str]
    rejected: list[tuple[RemoteImage, VerificationError]] = field(default_factory=list)


def repositories(client: RegistryClient) -> list[str]:
    return [client.ref.repository] if client.ref.repository else client.catalog()


# Refusals that mean an attestation was tampered with, lost or forged, as opposed to an image that
# is simply not for this arch/stack or did not pass: a fallback past these is said loudly.
INTEGRITY_REASONS = {"corrupt", "bad-signature", "untrusted-key", "digest-mismatch", "missing", "unreadable"}


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def pull(
    arch: str,
    *,
    stack: str = DEFAULT_STACK,
    registry: str | None = None,
    local_tag: str | None = None,
    allow_static: bool = False,
    exact: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = _warn,
) -> PullResult:
    """``allow_static``: also take images whose validation ran no GPU check (level static-only).

    By default the newest image that verifies is pulled, and every newer image passed over is
    named through ``warn`` (loudly when its attestation was tampered with or missing). With
    ``exact`` only the newest image of the stack may be pulled: a tampered newest tag then stops
    the pull instead of quietly rolling back to an older image.
    """
    device = parse_target_id(arch)
    if local_tag and not _LOCAL_NAME_RE.match(local_tag):
        raise RocstackError(f"'{local_tag}' is not a valid image name", "use e.g. --tag myteam/rocstack:gfx942")
    home = rocstack_home()
    ref = parse_registry(default_registry(registry, home))
    trusted = trusted_keys(home)
    if not trusted:
        raise RocstackError(
            "no trusted keys: rocstack cannot verify any attestation",
            "trust the publisher's public key: rocstack keys trust FILE.pub",
        )
    engine = connect()  # a stopped engine is found before minutes of registry reads, not after
    client = RegistryClient(ref)
    client.ping()
    images = scan(client, repositories(client))
    candidates = [image for image in images if image.stack == stack]
    if not candidates:
        stacks = sorted({image.stack for image in images if image.stack})
        raise RocstackError(
            f"no image of stack '{stack}' in {ref}",
            f"push one with `invoke push`, or pick --stack (stacks there: {', '.join(stacks) or 'none'})",
            exit_code=1,
        )
    rejected: list[tuple[RemoteImage, VerificationError]] = []
    for image in candidates[:1] if exact else candidates:
        try:
            verified = judge(image, trusted, arch=device, stack=stack, allow_static=allow_static)
        except VerificationError as exc:
            rejected.append((image, exc))
            continue
        for newer, exc in rejected:
            kind = "ATTESTATION PROBLEM" if exc.reason in INTEGRITY_REASONS else "not usable here"
            warn(f"falling back past newer {_name(ref, newer)} ({kind}: {exc.message}); "
                 f"pulling the older {_name(ref, image)} - pass --exact to refuse instead")
        say(f"pulling {ref.host}/{image.repository}@{image.digest} (attestation verified)")
        tags = _engine_pull(engine, ref, image, client, local_tag, say)
        signer = trusted_key_names(home).get(verified.key_id, {}).get("name", "")
        return PullResult(ref, image, verified, signer, tags, rejected)
    if exact and len(candidates) > 1:
        newest, exc = rejected[0]
        raise VerificationError(exc.reason, f"--exact: the newest image of stack '{stack}', {_name(ref, newest)}, "
                                f"does not verify for {device}: {exc.message}", exc.hint)
    reasons = "; ".join(f"{_name(ref, image)}: {exc.message}" for image, exc in rejected[:MAX_REASONS])
    if len(rejected) > MAX_REASONS:
        reasons += f"; and {len(rejected) - MAX_REASONS} older (see `invoke images`)"
    raise VerificationError(
        rejected[0][1].reason,
        f"no image of stack '{stack}' in {ref} passes verification for {device}: {reasons}",
        rejected[0][1].hint,
    )


def _name(ref: RegistryRef, image: RemoteImage) -> str:
    return f"{ref.host}/{image.repository}:{','.join(image.tags)}"


def _engine_pull(engine, ref: RegistryRef, image: RemoteImage, client: RegistryClient, local_tag: str | None, say) -> list[str]:
    remote = f"{ref.host}/{image.repository}"
    pulled = transfer.pull_by_digest(engine, remote, image.digest, client, say)
    if pulled.id != image.image_id:  # the engine checks the digest; this checks it is the config we judged
        raise RocstackError(
            f"the engine pulled {pulled.id[:19]} for {remote}@{image.digest[:19]}, expected {image.image_id[:19]}",
            "do not use it; report this registry",
        )
    names = [local_tag] if local_tag else [f"{remote}:{tag}" for tag in image.tags] + [
        f"rocstack/{image.stack}:{image.tags[0]}"
    ]
    for name in names:
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        pulled.tag(repository, tag)
    return names
