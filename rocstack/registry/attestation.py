"""The signed validation attestation: what it says, how it is signed, how it is checked.

An attestation binds the validation verdict and its level to one image manifest
digest: an in-toto Statement v1 (``statement``) whose subject is the image, signed as
a DSSE envelope with ed25519 and carried in a Sigstore bundle (``dsse``), so cosign
verifies it too. Attestations in rocstack's first format are still read (``legacy``).
Nothing secret goes in: no key material, no credentials, no host paths of keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rocstack.arches import TargetID, parse_target_id
from rocstack.errors import ArchError
from rocstack.registry import dsse, legacy, statement
from rocstack.registry.refusals import VerificationError, canonical_json
from rocstack.registry.statement import GPU_VERIFIED, PREDICATE_TYPE, Claim

__all__ = ["VerificationError", "canonical_json", "PREDICATE_TYPE", "Verified", "build_statement", "sign",
           "open_attestation", "check", "verify", "newest_trusted", "covers", "BUNDLE", "LEGACY"]

BUNDLE, LEGACY = "in-toto bundle", "legacy envelope"  # the two forms an attestation may come in


def build_statement(*, repository: str, digest: str, **facts) -> dict:
    """The statement for image ``repository@digest``; ``facts`` as :func:`statement.build_predicate` takes them."""
    return statement.build_statement(repository, digest, statement.build_predicate(**facts))


def sign(intoto_statement: dict, private_key: Ed25519PrivateKey) -> bytes:
    """The Sigstore bundle that goes into the registry."""
    return dsse.sign_bundle(canonical_json(intoto_statement), private_key)


@dataclass(frozen=True)
class Verified:
    """An attestation whose signature verified with a trusted key, and what it claims."""

    claim: Claim
    key_id: str
    form: str = BUNDLE

    @property
    def digest(self) -> str:
        return self.claim.digest

    @property
    def stack(self) -> str:
        return self.claim.stack

    @property
    def arches(self) -> list[str]:
        return self.claim.arches

    @property
    def verdict(self) -> str | None:
        return self.claim.verdict

    @property
    def level(self) -> str:
        return self.claim.level

    @property
    def components(self) -> list[dict]:
        return self.claim.components

    @property
    def check_counts(self) -> dict[str, int]:
        checks = self.claim.checks
        return {s: int(checks.get(s) or 0) for s in ("pass", "skip", "fail", "error")}

    @property
    def validated_at(self) -> str | None:
        return self.claim.validated_at

    @property
    def gpu_name(self) -> str | None:
        device = (self.claim.gpu or {}).get("device") or {}
        return device.get("name") if device.get("available") else None


def open_attestation(raw: bytes, trusted: dict[str, Ed25519PublicKey], form: str = BUNDLE) -> Verified:
    """Parse and check the signature (in the order a forger would have to beat them)."""
    if form == LEGACY:
        claim, signer = legacy.open_legacy(raw, trusted)
        return Verified(claim, signer, LEGACY)
    opened = dsse.open_bundle(raw, trusted)
    return Verified(statement.parse_statement(opened.payload), opened.key_id, BUNDLE)


def check(
    signed: Verified,
    *,
    digest: str,
    arch: TargetID | None = None,
    stack: str | None = None,
    allow_static: bool = False,
) -> Verified:
    """Everything ``pull`` requires of a signed attestation beyond its signature."""
    claim = signed.claim
    if digest not in claim.subject_digests:
        raise VerificationError(
            "digest-mismatch",
            f"attestation is for image {claim.digest[:19]}, not for this image {digest[:19]} "
            "(the tag was moved to a different image or the attestation was copied)",
            "pull a tag whose image was pushed with its own attestation",
        )
    if not claim.validated or claim.verdict != "pass":
        why = claim.predicate.get("unvalidated_reason") or f"verdict {claim.verdict}"
        raise VerificationError(
            "verdict",
            f"image {digest[:19]} did not pass validation ({why})",
            "validate and push a fixed build",
            status=str(claim.verdict or "unvalidated"),
        )
    if claim.level != GPU_VERIFIED and not allow_static:
        why = claim.predicate.get("level_reason") or "no GPU evidence"
        raise VerificationError(
            "level",
            f"image {digest[:19]} passed validation {claim.level}, not gpu-verified ({why})",
            "validate it on a machine with the GPU and push again, or accept static-only images with --allow-static",
            status=claim.level,
        )
    if stack is not None and claim.stack != stack:
        raise VerificationError("stack", f"image {digest[:19]} is stack '{claim.stack}', not '{stack}'")
    if arch is not None and not covers(claim.arches, arch):
        raise VerificationError(
            "arch",
            f"image {digest[:19]} is built for {','.join(claim.arches)}, which does not run on {arch}",
            f"build and push an image for {arch}",
        )
    return signed


def verify(
    raw: bytes,
    *,
    trusted: dict[str, Ed25519PublicKey],
    digest: str,
    arch: TargetID | None = None,
    stack: str | None = None,
    allow_static: bool = False,
    form: str = BUNDLE,
) -> Verified:
    return check(open_attestation(raw, trusted, form), digest=digest, arch=arch, stack=stack, allow_static=allow_static)


class Found(Protocol):
    content: bytes | VerificationError
    form: str


def newest_trusted(
    items: Iterable[Found], trusted: dict[str, Ed25519PublicKey], digest: str | None = None
) -> Verified:
    """Of the attestations found for image ``digest``, the one a trusted key signed most recently.

    "Most recently" is the ``created`` time inside the signed predicate, so nobody
    without the key can promote an older verdict over a newer one. Those about
    ``digest`` come first, so a copy of another image's attestation cannot hide this
    image's own. Unsigned, untrusted or corrupt ones are skipped; if nothing verifies,
    the first problem is the refusal.
    """
    signed: list[Verified] = []
    first_problem: VerificationError | None = None
    for item in items:
        try:
            if isinstance(item.content, VerificationError):
                raise item.content
            signed.append(open_attestation(item.content, trusted, item.form))
        except VerificationError as exc:
            first_problem = first_problem or exc
    if signed:
        own = [v for v in signed if digest in v.claim.subject_digests] or signed
        return max(own, key=lambda v: _timestamp(v.claim.predicate.get("created")))
    if first_problem is None:
        raise VerificationError("missing", "no attestation found")
    raise first_problem


def _timestamp(text: object) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def covers(image_arches: list[str], device: TargetID) -> bool:
    """Does any target the image was built for run on ``device`` (LLVM target-ID rules)?"""
    for text in image_arches:
        try:
            built = parse_target_id(text, known_only=False)
        except ArchError:
            continue
        if built.runs_on(device):
            return True
    return False
