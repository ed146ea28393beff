"""Moving image layers between the engine and a registry, with progress and clear errors.

The engine does the layer transfer (it verifies digests and reuses layers it has);
rocstack hands it the credentials from the Docker config and turns its stream of
events into one progress line per finished layer and one-line errors.
"""

from __future__ import annotations

from typing import Callable, Iterable

import docker
from docker.errors import APIError, ImageNotFound

from rocstack.errors import RocstackError
from rocstack.registry.oci import RegistryClient

_LAYER_DONE = ("Pushed", "Layer already exists", "Pull complete", "Already exists")


def push_image(
    engine: docker.DockerClient,
    image_id: str,
    remote: str,
    tag: str,
    client: RegistryClient,
    say: Callable[[str], None],
) -> str:
    """Push ``image_id`` as ``remote:tag``; returns the manifest digest the engine reports.

    The registry-named tag exists only for the push (the engine pushes by name), so it
    is removed afterwards unless the image already had it.
    """
    reference = f"{remote}:{tag}"
    image = engine.images.get(image_id)
    created_tag = reference not in image.tags
    image.tag(remote, tag)
    digest = None
    try:
        events = engine.api.push(remote, tag=tag, auth_config=_auth(client), stream=True, decode=True)
        for event in _follow(events, client, "push", say):
            digest = (event.get("aux") or {}).get("Digest") or digest
    finally:
        if created_tag:
            engine.images.remove(reference, noprune=True)
    if not digest:
        raise RocstackError(f"the engine pushed {reference} but reported no manifest digest", "push again")
    return digest


def pull_by_digest(
    engine: docker.DockerClient, remote: str, digest: str, client: RegistryClient, say: Callable[[str], None]
):
    """Pull ``remote@digest``; returns the engine's image object."""
    events = engine.api.pull(remote, tag=digest, auth_config=_auth(client), stream=True, decode=True)
    for _ in _follow(events, client, "pull", say):
        pass
    try:
        return engine.images.get(f"{remote}@{digest}")
    except ImageNotFound:
        raise RocstackError(f"the engine reported no image after pulling {remote}@{digest[:19]}", "pull again") from None


def _auth(client: RegistryClient) -> dict | None:
    return client.credential.docker_auth_config() if client.credential else None


def _follow(events: Iterable[dict], client: RegistryClient, action: str, say: Callable[[str], None]):
    try:
        for event in events:
            if "error" in event:
                raise engine_error(str(event["error"]), client, action)
            if event.get("status") in _LAYER_DONE and event.get("id"):
                say(f"  layer {event['id']}: {event['status'].lower()}")
            yield event
    except APIError as exc:
        raise engine_error(str(exc.explanation or exc), client, action) from None


def engine_error(text: str, client: RegistryClient, action: str) -> RocstackError:
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "no basic auth" in lowered:
        return client.refusal()
    if "connection refused" in lowered or "no such host" in lowered or "i/o timeout" in lowered:
        return RocstackError(f"registry {client.ref.host} became unreachable during the {action}", "check the registry")
    first_line = text.splitlines()[0][:300] if text else "no reason given"
    return RocstackError(f"the engine failed to {action} {client.ref}: {first_line}")
