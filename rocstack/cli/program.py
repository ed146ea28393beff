"""The ``rocstack`` console command: invoke's Program over the same task collection as tasks.py."""

from __future__ import annotations

import sys

from invoke import Program

from rocstack import __version__
from rocstack.cli.collection import build_collection

# Sub-collections a user may spell with a space (``rocstack kernels build``);
# invoke itself wants ``kernels.build``.
_GROUPS = {"kernels", "keys"}


def _join_groups(argv: list[str]) -> list[str]:
    if len(argv) >= 3 and argv[1] in _GROUPS and not argv[2].startswith("-"):
        return [argv[0], f"{argv[1]}.{argv[2]}", *argv[3:]]
    return argv


def main(argv: list[str] | None = None) -> None:
    argv = _join_groups(list(sys.argv if argv is None else argv))
    # `rocstack audit a.so b.whl`: invoke has no variadic positionals.
    from rocstack.cli.audit_tasks import join_variadic_paths

    argv = join_variadic_paths(argv)
    program = Program(
        namespace=build_collection(),
        name="rocstack",
        binary="rocstack",
        version=__version__,
    )
    program.run(argv)


if __name__ == "__main__":
    main()
