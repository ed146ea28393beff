"""Registry tasks: push/pull validated images with signed attestations, list them, manage keys."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import task

from rocstack.cli.common import help_if_asked, print_table, require, task_log, user_errors
from rocstack.contracts import DEFAULT_STACK


@task(
    auto_shortflags=False,
    help={
        "image": "local image to push (name:tag or id) (required)",
        "registry": "HOST[:PORT]/REPO (default: $ROCSTACK_REGISTRY, else config.json 'registry')",
        "tag": "tag in the registry (default: the image's rocstack/<stack>:TAG tag)",
        "allow-unvalidated": "push an image without a passing report, marked unvalidated in its attestation",
        "report": "directory holding report.json (default: $ROCSTACK_HOME/reports/<image id>/)",
        "key": "private key file to sign with (default: the key from `keys generate`)",
    }
)
@user_errors
def push(c, image="", registry=None, tag=None, allow_unvalidated=False, report=None, key=None):
    """Push a validated image and its signed validation attestation to a registry."""
    from rocstack.registry.push import push as push_image

    require(image, "--image", "rocstack push --image rocstack/local:gfx942-latest --registry HOST/REPO")
    result = push_image(
        image,
        registry=registry,
        tag=tag,
        allow_unvalidated=allow_unvalidated,
        report_dir=Path(report) if report else None,
        key_path=Path(key) if key else None,
        say=task_log().step,
    )
    state = f"validated (verdict pass, {result.level})" if result.validated else f"UNVALIDATED ({result.unvalidated_reason})"
    where = "referrers API" if result.indexed_by_referrers else f"referrers tag {result.attestation_tag}"
    print(f"pushed      {result.reference}")
    print(f"digest      {result.digest}")
    print(f"attestation {result.attestation_digest} ({where}), signed by {result.key_id}, {state}")


@task(
    auto_shortflags=False,
    help={
        "arch": "GPU target ID the image must run on, e.g. gfx942 or gfx90a:xnack+ (required)",
        "stack": f"stack name (default: {DEFAULT_STACK})",
        "registry": "HOST[:PORT][/REPO] (default: $ROCSTACK_REGISTRY, else config.json 'registry')",
        "tag": "local name for the pulled image (default: its registry name and rocstack/<stack>:<tag>)",
        "allow-static": "also take static-only images (validated where no GPU ran the GPU checks)",
        "exact": "only the newest image of the stack: refuse instead of falling back to an older one "
                 "when the newest does not verify (alias --no-fallback)",
        "no-fallback": "same as --exact",
    }
)
@user_errors
def pull(c, arch="", stack=DEFAULT_STACK, registry=None, tag=None, allow_static=False, exact=False,
         no_fallback=False):
    """Pull the newest image of a stack whose signed attestation verifies for an arch."""
    from rocstack.registry.pull import pull as pull_image

    require(arch, "--arch", "rocstack pull --arch gfx942 --registry HOST/REPO")
    log = task_log()
    _report_pull(pull_image(arch, stack=stack, registry=registry, local_tag=tag, allow_static=allow_static,
                            exact=exact or no_fallback, say=log.step, warn=log.warn))


def _report_pull(result) -> None:
    verified = result.verified
    counted = ", ".join(f"{n} {s}" for s, n in verified.check_counts.items() if n)
    components = ", ".join(f"{c['name']}={c.get('ref') or c.get('version')}" for c in verified.components)
    signer = f"{verified.key_id}" + (f" ({result.signer_name})" if result.signer_name else "")
    print(f"verified   {result.registry.host}/{result.image.repository}:{','.join(result.image.tags)}")
    print(f"  digest     {result.image.digest} (the attestation is bound to this manifest digest)")
    print(f"  signature  ed25519 by trusted key {signer}")
    print(f"  verdict    {verified.verdict} ({counted or 'no checks'}; validated {verified.validated_at or '?'})")
    print(f"  level      {verified.level}" + (f" (GPU {verified.gpu_name})" if verified.gpu_name else ""))
    print(f"  stack      {verified.stack}")
    print(f"  arches     {','.join(verified.arches)}")
    print(f"  components {components or 'none'}")
    print(f"  found via  {result.image.attestation_source} ({verified.form})")
    for image, exc in result.rejected:
        print(f"  skipped    newer {','.join(image.tags)}: {exc.message}")
    print(f"pulled as  {', '.join(result.local_tags)}")


@task(
    auto_shortflags=False,
    help={
        "registry": "HOST[:PORT][/REPO]; a bare host lists every repository (default: $ROCSTACK_REGISTRY)",
        "json": "print JSON instead of a table",
    }
)
@user_errors
def images(c, registry=None, json_=False):
    """List a registry's rocstack images: stacks, arches, digests, verdicts, dates."""
    from rocstack.registry import keys as keyring
    from rocstack.registry.attestation import VerificationError
    from rocstack.registry.catalog import judge, scan
    from rocstack.registry.config import default_registry
    from rocstack.registry.oci import RegistryClient, parse_registry
    from rocstack.registry.pull import repositories

    ref = parse_registry(default_registry(registry))
    client = RegistryClient(ref)
    client.ping()
    trusted = keyring.trusted_keys()
    rows = []
    for image in scan(client, repositories(client)):
        try:
            verified = judge(image, trusted)
            status, detail = "pass", f"signed by {verified.key_id}"
        except VerificationError as exc:
            status, detail = exc.status, exc.message
        rows.append(
            {
                "repository": f"{ref.host}/{image.repository}",
                "tags": image.tags,
                "stack": image.stack,
                "arches": image.arches,
                "digest": image.digest,
                "verdict": status,
                "detail": detail,
                "created": image.created,
            }
        )
    if json_:
        print(json.dumps(rows, indent=2))
        return
    print_table(f"images in {ref}", ["repository:tags", "stack", "arches", "digest", "verdict", "created"], [
        [f"{row['repository']}:{','.join(row['tags'])}", row["stack"] or "-", ",".join(row["arches"]) or "-",
         row["digest"][:19], row["verdict"], row["created"][:19]]
        for row in rows
    ])


@task(auto_shortflags=False, help={"name": "a label for the key in the trusted list (e.g. your team)"})
@user_errors
def generate(c, name=""):
    """Generate an ed25519 signing key pair; its public half becomes trusted."""
    from rocstack.registry import keys as keyring

    made = keyring.generate_key(name)
    print(f"key {made.key_id}")
    print(f"  private {made.private_path} (mode 0600: keep it secret, never put it in an image)")
    print(f"  public  {made.public_path} (give this to the people who pull: rocstack keys trust FILE)")
    if made.previous_signing_key and made.previous_signing_key != made.key_id:
        print(f"  push now signs with this key (was {made.previous_signing_key}, which stays trusted)")


@task(auto_shortflags=False, help={"file": "public key file (.pub) to trust", "name": "a label for the key"})
@user_errors
def trust(c, file, name=""):
    """Trust a public key: attestations it signed will verify on pull."""
    from rocstack.registry import keys as keyring

    help_if_asked(file, "keys.trust")
    kid = keyring.trust_key(Path(file), name)
    print(f"trusted {kid}")


@task(auto_shortflags=False, help={"key-id": "key id to stop trusting, as `keys list` shows it"})
@user_errors
def untrust(c, key_id):
    """Stop trusting a public key."""
    from rocstack.registry import keys as keyring

    help_if_asked(key_id, "keys.untrust")
    keyring.untrust_key(key_id)
    print(f"no longer trusted: {key_id}")


@task(name="list")
@user_errors
def list_keys(c):
    """List trusted public keys and the signing key."""
    from rocstack.registry import keys as keyring
    from rocstack.registry.config import load_config

    signing = load_config().get("signing_key")
    print_table("trusted keys", ["key id", "name", "added", "signs pushes"], [
        [kid, record.get("name", ""), record.get("added", ""), "yes" if kid == signing else ""]
        for kid, record in keyring.trusted_key_names().items()
    ])


TASKS = [push, pull, images]
GROUPS = {"keys": [generate, trust, untrust, list_keys]}
