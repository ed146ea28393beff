"""The one exception type users see.

Every failure a user can cause (bad arch, bad recipe, engine down, corrupt file)
is raised as a RocstackError carrying what went wrong and how to fix it; the CLI
prints it as one line and exits non-zero, never with a traceback.
"""

from __future__ import annotations


class RocstackError(Exception):
    """A user-facing error: ``message`` names the problem, ``hint`` the fix."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text += f" - {self.hint.rstrip('.')}"
        return text.replace("\n", " ")

    def __str__(self) -> str:
        return self.one_line()


class ArchError(RocstackError):
    """Unknown, malformed or unsupported GPU architecture."""


class RecipeError(RocstackError):
    """A recipe or stack file that cannot be loaded or is inconsistent."""


class EngineError(RocstackError):
    """The container engine is missing, stopped or refused a request."""
