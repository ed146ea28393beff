"""OCI labels that depend on time and on the checkout: added with the build manifest, never rendered.

``org.opencontainers.image.created``, ``revision`` (the commit of the project holding the
recipes), ``source`` (that project's remote), ``base.name`` and ``base.digest`` (the image
the build started from). The rendered Dockerfile stays byte-identical across machines and
commits (it is hashed into tags and golden-tested), so these labels are set by the one-layer
manifest build on top of the runtime image, like the manifest itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CREATED = "org.opencontainers.image.created"
REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def checkout_facts(root: Path) -> dict[str, str]:
    """revision and source of the project at ``root`` when it is a git checkout (else nothing:
    a label that cannot be known is left out, never guessed)."""
    facts = {}
    if _git(root, "rev-parse", "--show-toplevel") is None:
        return facts
    revision = _git(root, "rev-parse", "HEAD")
    if revision:
        facts[REVISION] = revision
    remote = _git(root, "remote", "get-url", "origin")
    if remote:
        facts[SOURCE] = remote
    return facts


def base_labels(base_reference: str, repo_digests: list[str] | tuple[str, ...], image_id: str | None) -> dict[str, str]:
    """base.name is the reference the Dockerfile names; base.digest is its manifest digest when the
    reference pins one or the engine knows it from a registry, else the local image id (a locally
    imported debootstrap base has no registry manifest)."""
    labels = {BASE_NAME: base_reference.split("@", 1)[0]}
    if "@" in base_reference:
        labels[BASE_DIGEST] = base_reference.split("@", 1)[1]
    elif repo_digests:
        labels[BASE_DIGEST] = repo_digests[0].split("@", 1)[1]
    elif image_id and image_id.startswith("sha256:"):
        labels[BASE_DIGEST] = image_id
    return labels


def oci_labels(root: Path, created: str, base: dict[str, str]) -> dict[str, str]:
    return {CREATED: created, **checkout_facts(root), **base}
