"""What every task shares: turning RocstackError into one line and an exit code."""

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
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:  # `rocstack arches | head`
            sys.stderr.close()
            raise Exit(code=0) from None

    wrapper.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return wrapper
