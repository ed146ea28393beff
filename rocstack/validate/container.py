"""Run the in-image suite in a throwaway container and bring its JSON back.

The container gets no network (validation must not depend on one) and the GPU options
from :mod:`rocstack.validate.gpu_access`. The suite's JSON is copied out of the stopped
container with the archive API, so no bind mount (and no host path) is involved.
"""

from __future__ import annotations

import io
import json
import os
import tarfile

from rocstack.contracts import LABEL_VALIDATION_CONTAINER
from rocstack.engine import ImageFacts
from rocstack.errors import EngineError, RocstackError
from rocstack.validate.gpu_access import GpuAccess

SUITE_OUT = "/tmp/rocstack-validation/suite.json"
TIMEOUT_ENV = "ROCSTACK_VALIDATE_TIMEOUT"
DEFAULT_TIMEOUT_S = 3600
GPU_REASON_ENV = "ROCSTACK_VALIDATE_GPU_REASON"  # read by rocstack_validation.gpu


def _read_archive(stream) -> bytes:
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        if member is None or not member.isfile():
            raise RocstackError("the validation suite wrote no report file", "see the container log above")
        return tar.extractfile(member).read()


def _failure(image: ImageFacts, reference: str, status: int, log: str) -> RocstackError:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {status}"
    if "No module named rocstack_validation" in log:
        return RocstackError(f"image {reference} has no validation suite (rocstack_validation is not installed)",
                             "rebuild it with `invoke build`: its runtime stage installs validation/")
    if status == 127 or "executable file not found" in log:
        return RocstackError(f"image {reference} has no python3 on PATH, so the validation suite cannot run",
                             "validate images built by `invoke build`")
    return RocstackError(f"validation could not run in {reference}: {last.removeprefix('error: ')}",
                         "fix the image (the line above says what is missing) and validate again")


def start_and_wait(container, timeout: float, what: str) -> int:
    """Start a throwaway container and wait for its exit status; a timeout or a lost engine is one line."""
    import requests

    try:
        container.start()
        return container.wait(timeout=timeout)["StatusCode"]
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        # the SDK reports a wait() timeout as ReadTimeout or as a ConnectionError wrapping one
        if "timed out" not in str(exc) and not isinstance(exc, requests.exceptions.ReadTimeout):
            raise EngineError(f"lost the Docker engine while {what}: {exc}",
                              "check the engine (docker info) and validate again") from None
        raise RocstackError(f"{what} ran longer than {timeout:.0f} s and was stopped",
                            f"raise {TIMEOUT_ENV} (seconds) if the image's checks are that slow") from None


def remove_quietly(container) -> None:
    """Remove a throwaway container; one already gone leaves nothing of ours behind either."""
    import docker.errors

    if container is None:
        return
    try:
        container.remove(force=True)
    except docker.errors.APIError:
        pass


def run_suite(client, image: ImageFacts, reference: str, gpu: GpuAccess) -> dict:
    """Run ``python3 -m rocstack_validation`` in a container of ``image``; return its JSON."""
    import docker.errors

    try:
        timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        raise RocstackError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a number of seconds",
                            f"set {TIMEOUT_ENV} to seconds, e.g. 3600") from None
    environment = {} if gpu.available else {GPU_REASON_ENV: gpu.reason}
    try:
        container = client.containers.create(
            image.id,
            entrypoint=["python3"],
            command=["-m", "rocstack_validation", "--out", SUITE_OUT],
            environment=environment,
            network_mode="none",
            labels={LABEL_VALIDATION_CONTAINER: "1"},
            **gpu.run_options,
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create a container of {reference}: {exc.explanation or exc}",
                          "check the GPU options the engine rejected, or run without a GPU") from None
    try:
        try:
            status = start_and_wait(container, timeout, f"validation of {reference}")
        except docker.errors.APIError as exc:
            log = (exc.explanation or str(exc))
            raise _failure(image, reference, 127 if "executable file not found" in log else -1, log) from None
        log = container.logs().decode(errors="replace")
        if status != 0:
            raise _failure(image, reference, status, log)
        try:
            raw = _read_archive(container.get_archive(SUITE_OUT)[0])
        except docker.errors.NotFound:
            raise _failure(image, reference, status, log or "the suite wrote no report") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise RocstackError("the validation suite wrote a report that is not JSON", "see the container log") from None
    finally:
        remove_quietly(container)
