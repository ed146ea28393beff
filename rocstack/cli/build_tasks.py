"""`base` and `build`: local base images and stack images on the Docker engine."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task

from rocstack.cli.common import task_log, user_errors
from rocstack.contracts import DEFAULT_STACK


@task(help={
    "stack": f"stack whose debootstrap base to make (default: {DEFAULT_STACK})",
    "force": "rebuild even when an image with the same inputs exists",
})
@user_errors
def base(c, stack=DEFAULT_STACK, force=False):
    """Make (or reuse) the locally built base image of a stack: debootstrap + import."""
    from rocstack.engine import connect
    from rocstack.imaging.base import ensure_base, require_local_base
    from rocstack.recipes.catalog import Catalog

    recipe = Catalog.default().stack(stack)
    require_local_base(recipe)
    result = ensure_base(connect(), recipe, force=force, say=task_log().step)
    state = "reused" if result.reused else f"built in {result.seconds:.0f}s"
    print(f"{result.tag} {result.image_id} ({state})")


@task(
    auto_shortflags=False,  # -h stays help (cache-to would take it)
    iterable=["wheelhouse", "cache_from", "cache_to"],
    help={
        "arch": "gfx arch or comma list (gfx90a,gfx942) for one image; default: the stack's default_arches",
        "stack": f"stack name (see `rocstack stacks`); default: {DEFAULT_STACK}",
        "wheelhouse": "directory of local wheels (torch at air-gapped sites); repeatable; "
        "default: the host pip's find-links directories",
        "quiet": "no progress output; print only the image tag",
        "json": "print the build result (tags, image id, manifest, stages, log) as JSON",
        "log": "also write the full build log to this file",
        "templates": "directory of templates that extend images/Dockerfile.j2 (searched first)",
        "no-cache": "rebuild every step (BuildKit --no-cache); pip's download cache is kept",
        "builder": "buildx builder to build on (`docker buildx ls`: remote BuildKit, kubernetes, docker-container, "
        "another docker context); default: the engine's own BuildKit",
        "cache-from": "import BuildKit's cache from this registry ref (HOST/REPO:TAG) or buildx cache spec; repeatable",
        "cache-to": "export BuildKit's cache to this registry ref (mode=max) or buildx cache spec; repeatable",
    },
)
@user_errors
def build(c, arch="", stack=DEFAULT_STACK, wheelhouse=None, quiet=False, json_=False, log="", templates="",
          no_cache=False, builder="", cache_from=None, cache_to=None):
    """Build a stack's image for the given arches on the Docker engine (BuildKit)."""
    from rocstack.imaging.builder import BuildFailed, build_image
    from rocstack.imaging.options import compute_build_options

    options = compute_build_options(
        stack=stack,
        arch=arch or None,
        wheelhouses=[Path(w) for w in wheelhouse or []],
        templates=templates or None,
        log_copy=Path(log) if log else None,
        no_cache=no_cache,
        builder=builder or None,
        cache_from=list(cache_from or []),
        cache_to=list(cache_to or []),
    )
    try:
        result = build_image(options, task_log(quiet))
    except BuildFailed as failure:
        for line in failure.tail:
            print(f"  | {line}", file=sys.stderr)
        raise
    if json_:
        print(result.to_json())
    elif quiet:
        print(result.tags[0])
    else:
        print(f"built {result.tags[0]} ({result.image_id[:19]})")
        print(f"  also tagged {result.tags[1]}")
        print(f"  stages run: {', '.join(result.stages_run) or 'none (all cached)'}; log: {result.log}")


TASKS = [base, build]
