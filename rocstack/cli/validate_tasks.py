"""Task ``validate``: run the validation suite in an image (or here) and write the reports."""

from __future__ import annotations

import sys

from invoke import Exit, task

from rocstack.cli.common import user_errors
from rocstack.errors import RocstackError


@task(help={
    "image": "image to validate (tag or id), run in a container of it",
    "local": "validate this environment instead (a GPU node without docker)",
    "stack": "with --local: the stack definition to judge against (default: the default stack)",
    "arch": "with --local: arches to expect (default: the stack's default arches)",
    "report": "directory for report.json, junit.xml, summary.md, report.html (written atomically)",
    "json": "print the report JSON instead of the summary table",
})
@user_errors
def validate(c, image=None, local=False, stack=None, arch=None, report=None, json_=False):
    """Validate an image: static audit, imports and versions, kernel tests, benchmarks. Exit 0 pass, 1 fail, 2 could not run."""
    from rich.console import Console

    from rocstack.validate import validate_image, validate_local
    from rocstack.validate.store import check_report_dir, report_json
    from rocstack.validate.summary import print_summary

    if bool(image) == bool(local):
        raise RocstackError("validate needs exactly one of --image IMG or --local",
                            "e.g. `invoke validate --image rocstack/local:gfx942-latest --report out/`")
    if image and (stack or arch):
        raise RocstackError("--stack and --arch apply to --local only", "an image's manifest says its stack and arches")
    if report:
        check_report_dir(report)  # before a validation that may take many minutes
    outcome = validate_image(image, report) if image else validate_local(stack, arch, report)
    if json_:
        sys.stdout.write(report_json(outcome.report))
    else:
        console = Console() if Console().is_terminal else Console(width=200)
        print_summary(outcome.report, console)
        if outcome.report_dir:
            console.print(f"reports: {outcome.report_dir}/{{report.json,junit.xml,summary.md,report.html}}")
    if outcome.report.exit_code:
        raise Exit(code=outcome.report.exit_code)


TASKS = [validate]
