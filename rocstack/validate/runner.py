"""Validate an image (in a container) or this environment (--local), then write the reports."""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rocstack.errors import RocstackError
from rocstack.validate import gpu_access
from rocstack.validate.container import inspect_image, run_suite
from rocstack.validate.report import Report, build_report
from rocstack.validate.store import save_home_copy, write_report_dir


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


def validate_image(reference: str, report_dir: str | Path | None = None) -> Outcome:
    from rocstack.build.engine import connect

    start = time.monotonic()
    client = connect()
    image = inspect_image(client, reference)
    access = gpu_access.detect(_engine_runtimes(client))
    suite = run_suite(client, image, reference, access)
    report = build_report(suite, target="image", image=image.to_json(), gpu_access=access.to_json(),
                          duration_s=time.monotonic() - start, reference=reference)
    return _finish(report, report_dir)


def _import_suite():
    """The suite from the environment, else from this checkout's validation/ (a GPU node with a bare copy)."""
    if importlib.util.find_spec("rocstack_validation") is None:
        checkout = Path(__file__).resolve().parents[2] / "validation"
        if not (checkout / "rocstack_validation").is_dir():
            raise RocstackError("the validation suite (rocstack_validation) is not installed",
                                "pip install ./validation from the rocstack checkout") from None
        sys.path.insert(0, str(checkout))
    from rocstack_validation.context import ContextError, local_context
    from rocstack_validation.suite import run_suite as run_local_suite

    return ContextError, local_context, run_local_suite


def validate_local(stack: str | None = None, arch: str | None = None, report_dir: str | Path | None = None) -> Outcome:
    """Run the suite here: a GPU node without docker (the environment is judged against ``stack``)."""
    ContextError, local_context, run_local_suite = _import_suite()
    start = time.monotonic()
    try:
        context = local_context(stack, arch)
    except ContextError as exc:
        raise RocstackError(f"cannot validate this environment: {exc}", "run from a rocstack checkout, or set ROCSTACK_ROOT") from None
    access = {"vendor": None, "reason": "local run: the GPU is whatever torch sees in this environment"}
    suite = run_local_suite(context)
    report = build_report(suite, target="local", image=None, gpu_access=access, duration_s=time.monotonic() - start)
    return _finish(report, report_dir)
