"""The ``rocstack`` console command: invoke's Program over the same task collection as tasks.py.

Before invoke parses it, the command line is normalised so that what a person types
works: ``rocstack kernels build`` (invoke wants ``kernels.build``), ``rocstack audit
a.so b.whl`` (invoke has no variadic positionals: the paths become one comma list),
and ``rocstack TASK ... --help`` anywhere (invoke would take ``--help`` as the value of
a positional parameter). Tasks run through ``invoke`` itself handle ``--help`` given
as a positional value with ``rocstack.cli.common.help_if_asked``.
"""

from __future__ import annotations

import os
import sys

from invoke import Program
from invoke.exceptions import ParseError

from rocstack import __version__

# Sub-collections a user may spell with a space (``rocstack kernels build``).
GROUPS = {"kernels", "keys"}
# Tasks whose one positional parameter takes several words, joined by commas.
VARIADIC = {"audit"}
HELP = ("--help", "-h")
# Flags that take no value, so the word after them is not theirs.
_SWITCHES = {"--json", "--quiet", "--force", "--local", "--no-cache", "--keep-ir", "--allow-unvalidated",
             "--allow-static", "--require-gpu", "--exact", "--no-fallback", "--print", "--run", "--check", *HELP}


def _join_groups(argv: list[str]) -> list[str]:
    if len(argv) >= 3 and argv[1] in GROUPS and not argv[2].startswith("-"):
        return [argv[0], f"{argv[1]}.{argv[2]}", *argv[3:]]
    return argv


def _task_index(argv: list[str]) -> int | None:
    for index, arg in enumerate(argv[1:], start=1):
        if not arg.startswith("-"):
            return index
    return None


def _join_positionals(argv: list[str], at: int) -> list[str]:
    out, words, i = argv[: at + 1], [], at + 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            out.append(arg)
            if "=" not in arg and arg not in _SWITCHES and i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
        else:
            words.append(arg)
        i += 1
    # no words: an empty value, which the task refuses with its own one-line error
    out.insert(at + 1, ",".join(words))
    return out


def normalise(argv: list[str]) -> list[str]:
    argv = _join_groups(list(argv))
    at = _task_index(argv)
    if at is None:
        return argv
    if any(arg in HELP for arg in argv[at + 1:]):
        return [argv[0], "--help", argv[at]]  # invoke's own per-task help
    return _join_positionals(argv, at) if argv[at] in VARIADIC else argv


class _Program(Program):
    """invoke's Program, with its parse errors (unknown flag, missing value) in rocstack's one-line form."""

    def parse_core(self, argv):
        try:
            return super().parse_core(argv)
        except ParseError as exc:
            raise ParseError(_one_line(exc, "run `rocstack --help` for the tasks")) from None

    def parse_tasks(self):
        try:
            return super().parse_tasks()
        except ParseError as exc:
            raise ParseError(_one_line(exc, "run `rocstack TASK --help` for its flags")) from None


def _one_line(exc: ParseError, fix: str) -> str:
    text = " ".join(str(exc).split()).rstrip(".!")
    return f"error: {text} - {fix}"


def main(argv: list[str] | None = None) -> None:
    from rocstack.cli.collection import build_collection

    program = _Program(namespace=build_collection(), name="rocstack", binary="rocstack", version=__version__)
    try:
        program.run(normalise(sys.argv if argv is None else argv))
    except BrokenPipeError:  # `rocstack TASK --help | head`
        sys.stdout = open(os.devnull, "w")
        sys.exit(0)


if __name__ == "__main__":
    main()
