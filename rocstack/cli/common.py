"""What every task shares: one-line errors, required flags, tables, the task's log.

Task modules import only this and invoke at module level; everything heavier (docker,
pydantic, jinja2, rich, cryptography) is imported inside the task bodies, so a light
task (``rocstack audit``) starts without paying for the others.
"""

from __future__ import annotations

import functools
import inspect
import sys

from invoke import Exit

from rocstack.errors import RocstackError


def user_errors(func):
    """Run a task body; a RocstackError becomes ``error: <problem> - <fix>`` and its exit code.

    The wrapper keeps the signature so invoke still derives the flags from it.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RocstackError as exc:
            raise Exit(f"error: {exc.one_line()}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("error: interrupted (Ctrl-C) - nothing was written; run the command again", code=130) from None
        except BrokenPipeError:  # `rocstack arches | head`
            sys.stderr.close()
            raise Exit(code=0) from None

    wrapper.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return wrapper


def require(value, flag: str, example: str):
    """A flag the task cannot run without (flags, not positionals, so `TASK --help` always works)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RocstackError(f"{flag} is required", f"e.g. {example}")
    return value


HELP_FLAGS = ("--help", "-h")


def help_if_asked(value, task_name: str) -> None:
    """`invoke audit --help`: invoke hands ``--help`` to a positional parameter; show the task's help."""
    if value in HELP_FLAGS:
        from invoke import Program

        from rocstack.cli.collection import build_collection

        Program(namespace=build_collection(), name="rocstack", binary="invoke").run(
            ["invoke", "--help", task_name], exit=False)
        raise Exit(code=0)


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A table on stdout (rich, imported here: only the tasks that print tables pay for it)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # piped or logged: don't squeeze the table into 80 columns
        console = Console(width=200)
    console.print(table)


def task_log(quiet: bool = False):
    """The task's progress log (stderr; folds into sections on GitHub/GitLab CI)."""
    from rocstack.log import Log

    return Log(quiet=quiet)
