"""`bake`: a stacks x arch-sets matrix as a buildx bake file, or baked on any buildx builder."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task

from rocstack.cli.common import task_log, user_errors
from rocstack.contracts import DEFAULT_STACK


@task(
    auto_shortflags=False,
    iterable=["arch", "set_", "wheelhouse"],
    help={
        "stack": f"comma list of stacks (see `rocstack stacks`); default: {DEFAULT_STACK}",
        "arch": "one arch set per flag (gfx942, or gfx90a,gfx942 for one multi-arch image); repeatable; "
        "default: each stack's default_arches",
        "cache": "registry for BuildKit's cache, HOST[:PORT]/REPO: each target imports and exports (mode=max) "
        "a ref keyed on stack, arches and component pins",
        "out": "write the bake file (buildx's JSON schema) here; default without --print/--run: "
        "docker-bake.json, the file `docker buildx bake` reads by default",
        "print": "print the bake file on stdout",
        "run": "run `docker buildx bake` and record each image as `build` does (manifest, labels, tags)",
        "builder": "buildx builder for --run (`docker buildx ls`); default: the current one",
        "set": "NAME=VALUE for a variable (ROCSTACK_IMAGE_PREFIX, ROCSTACK_CACHE_REPO), or TARGET.KEY=VALUE "
        "handed to buildx with --run; repeatable",
        "wheelhouse": "directory of local wheels (torch for the local stacks); repeatable",
        "templates": "directory of templates that extend images/Dockerfile.j2 (searched first)",
        "json": "with --run: print the per-target results as JSON",
        "quiet": "no progress output",
    },
)
@user_errors
def bake(c, stack=DEFAULT_STACK, arch=None, cache="", out="", print_=False, run=False, builder="", set_=None,
         wheelhouse=None, templates="", json_=False, quiet=False):
    """Build matrix (stacks x arch sets) as a buildx bake file; --run bakes it and records every image."""
    from rocstack.errors import RocstackError
    from rocstack.imaging.bake import run_bake, write_bake_file
    from rocstack.imaging.bake_options import compute_bake_options

    if not (out or print_ or run):
        out = "docker-bake.json"  # buildx's default file: `docker buildx bake` then needs no -f
    options = compute_bake_options(
        stack=stack, arches=list(arch or []), cache=cache or None, sets=list(set_ or []), out=out or None,
        run=run, builder=builder or None, wheelhouses=[Path(w) for w in wheelhouse or []], templates=templates or None,
    )
    if out or print_:
        text = write_bake_file(options)
        if print_:
            sys.stdout.write(text)
        if out:
            names = ", ".join(f"{cell.selection.stack.name}:{cell.selection.arch_list}" for cell in options.cells)
            how = "docker buildx bake" if out == "docker-bake.json" else f"docker buildx bake -f {out}"
            print(f"wrote {out} ({len(options.cells)} targets: {names}); run it with `{how}`", file=sys.stderr)
    if not run:
        return
    result = run_bake(options, task_log(quiet))
    if json_:
        print(result.to_json())
    else:
        for target in result.targets:
            if target.status == "built":
                print(f"built {target.target}: {target.tags[0]} ({(target.image_id or '')[:19]})")
            else:
                print(f"FAILED {target.target}: {target.error} (log {target.log})")
    if result.failed:
        names = ", ".join(t.target for t in result.failed)
        raise RocstackError(f"{len(result.failed)} of {len(result.targets)} targets failed: {names}",
                            f"the others were built and tagged; logs beside {result.bake_file}", exit_code=1)


TASKS = [bake]
