"""`render`: a stack and arch selection to a Dockerfile."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task

from rocstack.cli.common import user_errors
from rocstack.fsutil import write_atomic
from rocstack.recipes.catalog import Catalog, select
from rocstack.render import BuildResources, render_dockerfile


@task(help={
    "arch": "gfx arch or comma list (gfx90a,gfx942); default: the stack's default_arches",
    "stack": "stack name (see `rocstack stacks`); default: local",
    "output": "write the Dockerfile here instead of standard output",
    "templates": "directory of templates that extend images/Dockerfile.j2 (searched first)",
})
@user_errors
def render(c, arch="", stack="local", output="", templates=""):
    """Render the multi-stage Dockerfile for a stack and arch selection."""
    selection = select(Catalog.default(), stack, arch or None)
    template_dirs = [Path(templates)] if templates else None
    text = render_dockerfile(selection, BuildResources.detect(), template_dirs)
    if output:
        write_atomic(Path(output), text)
        print(f"wrote {output} (stack {selection.stack.name}, arches {selection.arch_list})", file=sys.stderr)
    else:
        sys.stdout.write(text)


TASKS = [render]
