"""`pin-bases`: pin stacks' registry base images by digest, refreshed from the registry.
`apt-versions`: the apt counterpart for a debootstrap base's pinned Debian packages."""

from __future__ import annotations

from invoke import task

from rocstack.cli.common import user_errors


@task(auto_shortflags=False, help={
    "stack": "comma list of stacks (default: every stack whose base is a registry image)",
    "check": "only report pins that differ from what the registry serves now; exit 1 if any does",
})
@user_errors
def pin_bases(c, stack="", check=False):
    """Resolve each stack's base.image tag to the digest its registry serves and write base.digest."""
    from rocstack.errors import RocstackError
    from rocstack.recipes.catalog import Catalog
    from rocstack.recipes.pins import refresh_pins

    names = [s.strip() for s in stack.split(",") if s.strip()] or None
    changes = refresh_pins(Catalog.default(), names, check=check)
    for change in changes:
        if not change.changed:
            state = "pinned, current"
        elif check:
            state = f"STALE: pinned {change.old or 'nothing'}"
        else:
            state = f"updated in {change.path}" + (f" (was {change.old})" if change.old else "")
        print(f"{change.stack}: {change.image}@{change.new} {state}")
    stale = [c.stack for c in changes if c.changed]
    if check and stale:
        raise RocstackError(f"{len(stale)} stack(s) pin another digest than their registry serves: {', '.join(stale)}",
                            "run `rocstack pin-bases` to refresh the pins", exit_code=1)


@task(auto_shortflags=False, help={
    "stack": "a stack whose debootstrap base pins Debian packages (base.debootstrap.apt), e.g. debian-rocm",
    "check": "exit 1 if a pinned version is no longer on the mirror",
})
@user_errors
def apt_versions(c, stack="", check=False):
    """List the versions Debian's mirror serves now for each package a stack's toolchain layer pins."""
    from rocstack.cli.common import require
    from rocstack.errors import RocstackError
    from rocstack.imaging.aptlayer import list_versions
    from rocstack.imaging.base import debian_mirror
    from rocstack.recipes.catalog import Catalog

    require(stack, "--stack", "--stack debian-rocm")
    chosen = Catalog.default().stack(stack)
    rows = list_versions(chosen, debian_mirror())
    for row in rows:
        state = "current" if row.current else "GONE from the mirror"
        print(f"{row.item}: {state}; apt would take {row.candidate or 'nothing'}; mirror has {', '.join(row.available) or 'none'}")
    gone = [r.item for r in rows if not r.current]
    if check and gone:
        raise RocstackError(f"{len(gone)} pinned package version(s) of stack {stack} are gone from the mirror: {', '.join(gone)}",
                            "set the versions listed above in base.debootstrap.apt.packages (and the pins)", exit_code=1)


TASKS = [pin_bases, apt_versions]
