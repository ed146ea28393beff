"""Run the in-image checks of any image with the image's own interpreter, the suite mounted read-only.

A staging directory holds ``rocstack_validation`` (its probe and what the probe imports)
and the pure-Python modules of rocstack those need (``arches``, ``contracts``, ``errors``,
``fsutil``, the arch table), plus the host's spec. It is bind-mounted read-only at
:data:`MOUNT`; a second, empty host directory receives the result. The container runs
the image's interpreter (as found on the image's PATH) as the image's user, without
network; nothing is installed into the image and the container is removed, so nothing
is left behind. A probe that cannot start (a Python that crashes, a missing
interpreter) is reported as one line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from rocstack.contracts import LABEL_VALIDATION_CONTAINER
from rocstack.errors import EngineError, RocstackError
from rocstack.validate.container import remove_quietly, start_and_wait
from rocstack.validate.gpu_access import GpuAccess

MOUNT = "/opt/rocstack-probe"
OUT_MOUNT = "/rocstack-out"
GPU_REASON_ENV = "ROCSTACK_VALIDATE_GPU_REASON"  # read by rocstack_validation.gpu
TIMEOUT_ENV = "ROCSTACK_VALIDATE_TIMEOUT"
PROBE_FILES = {
    "rocstack": ("__init__.py", "errors.py", "arches.py", "contracts.py", "fsutil.py", "data/arches.json"),
    "rocstack_validation": ("__init__.py", "probe.py", "gpu.py", "results.py", "torch_arches.py"),
}
MIN_PYTHON = (3, 9)


class ProbeFailed(Exception):
    """The image's interpreter could not run the probe; the message is the one-line evidence."""


def _package_dir(name: str) -> Path:
    if name == "rocstack":
        return Path(__file__).resolve().parents[1]
    spec = importlib.util.find_spec(name)  # locates the suite without importing it
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    checkout = Path(__file__).resolve().parents[2] / "validation" / name
    if checkout.is_dir():
        return checkout
    raise RocstackError("the validation suite (rocstack-validation) is not installed",
                        "pip install ./validation from the rocstack checkout")


def stage_probe(folder: Path, spec: dict) -> Path:
    """Copy the probe's modules and the spec into ``folder`` (what the container mounts)."""
    for package, names in PROBE_FILES.items():
        source = _package_dir(package)
        for name in names:
            target = folder / package / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, target)
    (folder / "spec.json").write_text(json.dumps(spec, indent=1))
    return folder


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, 3600))
    except ValueError:
        raise RocstackError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a number of seconds",
                            f"set {TIMEOUT_ENV} to seconds, e.g. 3600") from None


def _crash_line(interpreter: str, status: int, log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    last = f": {lines[-1][:300]}" if lines else ""
    if status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = f"signal {status - 128}"
        return f"the image's Python {interpreter} crashed on start (exit {status}, {name}){last}"
    if status in (126, 127):
        return f"the image's Python {interpreter} cannot be executed (exit {status}){last}"
    return f"the image's Python {interpreter} failed before the checks ran (exit {status}){last}"


def run_in_image(client, image_id: str, interpreter: str, image_env: dict[str, str], spec: dict,
                 gpu: GpuAccess) -> dict:
    """The probe's JSON (suite schema); ProbeFailed with one line when the interpreter could not run it."""
    import docker.errors

    timeout = _timeout()
    work = Path(tempfile.mkdtemp(prefix="rocstack-probe-"))
    container = None
    try:
        stage_probe(work / "lib", spec)
        out = work / "out"
        out.mkdir()
        os.chmod(out, 0o777)  # the image's user (often not root) writes its result here
        python_path = ":".join(filter(None, [MOUNT, image_env.get("PYTHONPATH")]))
        environment = {"PYTHONPATH": python_path, "PYTHONDONTWRITEBYTECODE": "1"}
        if not gpu.available:
            environment[GPU_REASON_ENV] = gpu.reason
        try:
            container = client.containers.create(
                image_id, entrypoint=[interpreter],
                command=["-B", "-m", "rocstack_validation.probe", "--spec", f"{MOUNT}/spec.json",
                         "--out", f"{OUT_MOUNT}/probe.json"],
                environment=environment, network_mode="none", labels={LABEL_VALIDATION_CONTAINER: "1"},
                volumes={str(work / "lib"): {"bind": MOUNT, "mode": "ro"}, str(out): {"bind": OUT_MOUNT, "mode": "rw"}},
                **gpu.run_options)
            status = start_and_wait(container, timeout, "the in-image checks")
        except docker.errors.APIError as exc:
            text = " ".join(str(exc.explanation or exc).split())
            if "no such file" in text.lower() or "executable file not found" in text or "exec format" in text:
                raise ProbeFailed(f"the image's Python {interpreter} cannot be started: {text[:300]}") from None
            raise EngineError(f"the engine refused the in-image checks' container: {text[:300]}",
                              "check the GPU options the engine rejected, or run without a GPU") from None
        result = out / "probe.json"
        if status != 0 or not result.is_file():
            raise ProbeFailed(_crash_line(interpreter, status or 1, container.logs().decode(errors="replace")))
        try:
            return json.loads(result.read_text())
        except ValueError:
            raise ProbeFailed("the in-image checks wrote a result that is not JSON") from None
    finally:
        remove_quietly(container)
        shutil.rmtree(work, ignore_errors=True)
