"""Validate an image (in a container) or this environment (--local), then write the reports.

Either way the suite (the ``rocstack-validation`` package) runs as its own process and
hands back JSON: inside a container of the image, or here with ``python -m
rocstack_validation --local``. rocstack itself never imports the suite, so the
dependency runs one way (the suite depends on rocstack).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rocstack.errors import RocstackError
from rocstack.log import Log, silent
from rocstack.validate import gpu_access
from rocstack.validate.container import run_suite
from rocstack.validate.report import Report, build_report
from rocstack.validate.store import save_home_copy, write_report_dir

SUITE_MODULE = "rocstack_validation"


@dataclass
class Outcome:
    report: Report
    report_dir: Path | None
    home_copy: Path | None


def _finish(report: Report, report_dir: str | Path | None) -> Outcome:
    written = write_report_dir(report, Path(report_dir)) if report_dir else None
    return Outcome(report, written, save_home_copy(report))


def _engine_runtimes(client) -> set[str]:
    try:
        return set((client.info().get("Runtimes") or {}).keys())
    except Exception:  # an engine that cannot describe itself simply offers no nvidia runtime
        return set()


def check_platform(image, reference: str) -> None:
    """ROCm's host libraries are x86-64 Linux: anything else is refused before any work."""
    if (image.os or "linux") != "linux" or (image.architecture or "amd64") != "amd64":
        raise RocstackError(f"image {reference} is {image.os}/{image.architecture}, not linux/amd64",
                            "validate a linux/amd64 image (ROCm's host libraries are x86-64 Linux)")


def merged_coverage(checks: list[dict]) -> dict | None:
    """The coverage matrices of the suite's audit checks, one matrix (rows side by side)."""
    parts = [(c.get("details") or {}).get("coverage") for c in checks if c.get("category") == "audit"]
    parts = [p for p in parts if isinstance(p, dict)]
    if not parts:
        return None
    arches = list(dict.fromkeys(a for p in parts for a in p.get("arches") or []))
    return {"arches": arches, "rows": [r for p in parts for r in p.get("rows") or []],
            "components": [c for p in parts for c in p.get("components") or []]}


def validate_image(reference: str, report_dir: str | Path | None = None, *, arches: list | None = None,
                   require_gpu: bool = False, log: Log | None = None) -> Outcome:
    """Validate one image: rocstack's own images run their installed suite (as always, unless ``arches``
    asks for other targets); any other image gets the static part and the in-image checks with its own Python."""
    from rocstack.engine import connect, image_facts

    log = log or silent()
    start = time.monotonic()
    client = connect()
    image = image_facts(client, reference)
    check_platform(image, reference)
    access = gpu_access.detect(_engine_runtimes(client))
    if image.rocstack.built_by_rocstack and not arches:
        suite = run_suite(client, image, reference, access)  # its output is the container's; no section around it
        extra = {"mode": "rocstack-image", "coverage": merged_coverage(suite.get("checks") or [])}
    else:
        from rocstack.validate.any_image import run_any_image

        config = client.api.inspect_image(image.id).get("Config") or {}
        suite, extra = run_any_image(client, image.id, reference, config, image.labels, arches, access, log)
    report = build_report(suite, target="image", image=image.identity(), gpu_access=access.to_json(),
                          duration_s=time.monotonic() - start, reference=reference, require_gpu=require_gpu,
                          extra={**extra, "platform": f"{image.os}/{image.architecture}"})
    return _finish(report, report_dir)


def _suite_environment() -> dict[str, str]:
    """The environment the local suite runs in: the installed package, else this checkout's validation/
    (a GPU node with a bare copy of the project)."""
    env = dict(os.environ)
    if importlib.util.find_spec(SUITE_MODULE) is not None:
        return env
    checkout = Path(__file__).resolve().parents[2] / "validation"
    if not (checkout / SUITE_MODULE).is_dir():
        raise RocstackError("the validation suite (rocstack-validation) is not installed",
                            "pip install ./validation from the rocstack checkout")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    return env


def run_local_suite(stack: str | None, arch: str | None) -> dict:
    """``python -m rocstack_validation --local`` here; its JSON, or its one-line refusal as an error."""
    argv = [sys.executable, "-m", SUITE_MODULE, "--local"]
    argv += ["--stack", stack] if stack else []
    argv += ["--arch", arch] if arch else []
    with tempfile.TemporaryDirectory(prefix="rocstack-suite-") as tmp:
        out = Path(tmp) / "suite.json"
        # the suite's own output (pytest runs) goes to our stderr (fd 2): stdout carries our result only
        result = subprocess.run([*argv, "--out", str(out)], env=_suite_environment(), stdin=subprocess.DEVNULL,
                                stdout=2, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0 or not out.exists():
            lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
            # the suite's own one-line refusal (or the last line of a crash) says what went wrong
            last = lines[-1].removeprefix("error: ") if lines else f"exit status {result.returncode}"
            raise RocstackError(f"cannot validate this environment: {last}",
                                "run from a rocstack checkout, or set ROCSTACK_ROOT")
        sys.stderr.write(result.stderr)
        try:
            return json.loads(out.read_text())
        except ValueError:
            raise RocstackError("the validation suite wrote a report that is not JSON", "see the output above") from None


def validate_local(stack: str | None = None, arch: str | None = None, report_dir: str | Path | None = None,
                   require_gpu: bool = False) -> Outcome:
    """Run the suite here: a GPU node without docker (the environment is judged against ``stack``)."""
    start = time.monotonic()
    suite = run_local_suite(stack, arch)
    access = {"vendor": None, "reason": "local run: the GPU is whatever torch sees in this environment"}
    report = build_report(suite, target="local", image=None, gpu_access=access, duration_s=time.monotonic() - start,
                          require_gpu=require_gpu, extra={"mode": "local"})
    return _finish(report, report_dir)
