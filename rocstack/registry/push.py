"""``push``: put a validated image and its signed attestation into a registry.

Order matters: everything that can refuse (signing key, report, registry auth) is
checked before the first byte is pushed, so a refusal leaves the registry untouched.
The attestation is signed over the digest the registry reports for the pushed
manifest, after checking that manifest's config is this very image (config digest =
image id), so the signature binds what a puller will actually get.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rocstack.arches import arches_slug, parse_target_id
from rocstack.engine import connect
from rocstack.errors import ArchError, RocstackError
from rocstack.registry import artifacts, attestation, transfer
from rocstack.contracts import LABEL_LEVEL, LABEL_STACK, LABEL_VERDICT, rocstack_home
from rocstack.registry.config import default_registry
from rocstack.registry.keys import key_id, load_signing_key
from rocstack.registry.local_image import LocalImage, find_report, inspect_image
from rocstack.registry.oci import RegistryClient, parse_registry
from rocstack.registry.redact import redact
from rocstack.registry.statement import verification_level

_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class PushResult:
    reference: str
    digest: str
    validated: bool
    unvalidated_reason: str | None
    key_id: str
    attestation_digest: str
    attestation_tag: str | None  # the referrers index tag, where the registry lacks the referrers API
    indexed_by_referrers: bool
    level: str  # gpu-verified | static-only | unvalidated


def push(
    image_ref: str,
    *,
    registry: str | None = None,
    tag: str | None = None,
    allow_unvalidated: bool = False,
    report_dir: Path | None = None,
    key_path: Path | None = None,
    say: Callable[[str], None] = print,
) -> PushResult:
    home = rocstack_home()
    target = parse_registry(default_registry(registry, home))
    if not target.repository:
        raise RocstackError(f"--registry {target} names no repository", f"write it as {target.host}/REPO")
    private_key = load_signing_key(key_path, home)
    engine = connect()
    image = inspect_image(engine, image_ref)
    lookup = find_report(image, report_dir, home)
    if lookup.problem and not allow_unvalidated:
        raise RocstackError(
            f"refusing to push {image_ref}: {lookup.problem}",
            f"validate it first (invoke validate --image {image_ref} --report DIR), "
            "or pass --allow-unvalidated to push it marked unvalidated",
            exit_code=1,
        )
    verification_level(lookup.report, lookup.problem is None)  # a report stating an unknown level: refused now
    remote_tag = tag or _default_tag(image)
    if not _TAG_RE.match(remote_tag):
        raise RocstackError(f"'{remote_tag}' is not a valid tag", "use letters, digits, '_', '.', '-' (max 128)")
    if artifacts.is_attestation_tag(remote_tag):
        raise RocstackError(f"tag '{remote_tag}' is reserved for attestations", "pick another --tag")
    client = RegistryClient(target)
    client.ping()  # unreachable / auth refused: one clear line before anything is pushed

    say(f"pushing {image_ref} ({image.id[:19]}) to {target}:{remote_tag}")
    digest = transfer.push_image(engine, image.id, f"{target.host}/{target.repository}", remote_tag, client, say)
    manifest = client.get_manifest(target.repository, digest)
    if manifest is None or json.loads(manifest.raw).get("config", {}).get("digest") != image.id:
        raise RocstackError(
            f"after the push, {target}@{digest[:19]} is not image {image.id[:19]}",
            "someone else pushed to the same tag at the same time; push again",
        )
    statement = attestation.build_statement(
        repository=str(target),
        digest=digest,
        media_type=manifest.media_type,
        image_id=image.id,
        stack=image.stack,
        arches=image.arches,
        components=image.components,
        report=redact(lookup.report, [client.credential.secret] if client.credential else []),
        validated=lookup.problem is None,
        unvalidated_reason=lookup.problem,
    )
    predicate = statement["predicate"]
    attached = artifacts.attach(
        client,
        target.repository,
        manifest,
        attestation.sign(statement, private_key),
        {LABEL_STACK: image.stack, LABEL_VERDICT: predicate["verdict"] or "unvalidated", LABEL_LEVEL: predicate["level"]},
    )
    return PushResult(
        reference=f"{target}:{remote_tag}",
        digest=digest,
        validated=lookup.problem is None,
        unvalidated_reason=lookup.problem,
        key_id=key_id(private_key.public_key()),
        attestation_digest=attached.manifest_digest,
        attestation_tag=attached.index_tag,
        indexed_by_referrers=attached.indexed_by_referrers,
        level=predicate["level"],
    )


def _default_tag(image: LocalImage) -> str:
    """The tag of the image's ``rocstack/<stack>:TAG`` name, else ``<arches>-<short id>``."""
    for name in image.tags:
        repo, _, tag = name.rpartition(":")
        if repo == f"rocstack/{image.stack}" and tag and not tag.endswith("latest"):
            return tag
    try:
        slug = arches_slug(parse_target_id(a, known_only=False) for a in image.arches)
    except ArchError:
        slug = "arches"
    return f"{slug}-{image.id.split(':', 1)[-1][:12]}"
