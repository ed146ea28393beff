"""`render`: a stack and arch selection to a Dockerfile."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task

from rocstack.cli.common import user_errors
from rocstack.contracts import DEFAULT_STACK


@task(help={
    "arch": "gfx arch or comma list (gfx90a,gfx942); default: the stack's default_arches",
    "stack": f"stack name (see `rocstack stacks`); default: {DEFAULT_STACK}",
    "output": "write the Dockerfile here instead of standard output",
    "templates": "directory of templates that extend images/Dockerfile.j2 (searched first)",
})
@user_errors
def render(c, arch="", stack=DEFAULT_STACK, output="", templates=""):
    """Render the multi-stage Dockerfile for a stack and arch selection."""
    from rocstack.fsutil import check_writable, write_atomic
    from rocstack.imaging.options import compute_render_options

    if output:
        check_writable(Path(output), "--output")
    options = compute_render_options(stack, arch, templates)
    text = options.render()
    if output:
        write_atomic(Path(output), text)
        print(f"wrote {output} (stack {options.selection.stack.name}, arches {options.selection.arch_list})",
              file=sys.stderr)
    else:
        sys.stdout.write(text)


TASKS = [render]
