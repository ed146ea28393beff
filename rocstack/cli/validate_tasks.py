"""Task ``validate``: validate images (or this environment) and write the reports."""

from __future__ import annotations

import sys

from invoke import Exit, task

from rocstack.cli.common import task_log, user_errors
from rocstack.errors import RocstackError


@task(iterable=["image"], help={
    "image": "image to validate (tag or id); repeat for several images and a side-by-side comparison",
    "local": "validate this environment instead (a GPU node without docker)",
    "stack": "with --local: the stack definition to judge against (default: the default stack)",
    "arch": "target arches (comma list); default: what the image declares (labels, PYTORCH_ROCM_ARCH, torch, dpkg)",
    "report": "directory for report.json, junit.xml, summary.md, report.html, report.sarif (written atomically)",
    "json": "print the report JSON instead of the summary table",
    "require_gpu": "fail a validation whose GPU checks could not run (static-only) instead of passing it",
})
@user_errors
def validate(c, image=None, local=False, stack=None, arch=None, report=None, json_=False, require_gpu=False):
    """Validate images: static audit, imports and versions, GPU checks, TunableOp tables. Exit 0 pass, 1 fail, 2 could not run."""
    from rich.console import Console

    from rocstack.arches import parse_arch_list
    from rocstack.validate import validate_image, validate_local
    from rocstack.validate.ci import report_to_ci
    from rocstack.contracts import VERDICT_EXIT
    from rocstack.validate.store import check_report_dir, report_json, write_comparison_dir
    from rocstack.validate.summary import print_summary

    images = [i for i in (image or []) if i]
    if bool(images) == bool(local):
        raise RocstackError("validate needs --image IMG (one or more) or --local, not both",
                            "e.g. `rocstack validate --image rocstack/local:gfx942-latest --report out/`")
    if images and stack:
        raise RocstackError("--stack applies to --local only", "an image's labels or manifest say its stack")
    targets = parse_arch_list(arch) if arch and images else None  # a bad arch is refused before any work
    if report:
        check_report_dir(report)  # before a validation that may take many minutes
    log = task_log()
    single_dir = report if len(images) <= 1 else None
    if local:
        outcomes = [validate_local(stack, arch, single_dir, require_gpu=require_gpu)]
    else:
        outcomes = [validate_image(name, single_dir, arches=targets, require_gpu=require_gpu, log=log) for name in images]
    reports = [o.report for o in outcomes]
    written = outcomes[0].report_dir if single_dir else (write_comparison_dir(reports, report) if report else None)
    report_to_ci(reports, sys.stderr)
    if json_:
        if len(reports) == 1:
            sys.stdout.write(report_json(reports[0]))
        else:
            from rocstack.validate.compare import comparison_json, folder_name

            sys.stdout.write(comparison_json(reports, [folder_name(i, r) for i, r in enumerate(reports)]))
    else:
        console = Console() if Console().is_terminal else Console(width=200)
        for item in reports:
            print_summary(item, console)
        if written and len(reports) == 1:
            console.print(f"reports: {written}/{{report.json,junit.xml,summary.md,report.html,report.sarif}}")
        elif written:
            console.print(f"reports: {written}/comparison.{{md,html,json}} and one folder per image")
    worst = max(VERDICT_EXIT[r.verdict] for r in reports)
    if worst:
        raise Exit(code=worst)


TASKS = [validate]
