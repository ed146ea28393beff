"""The one progress log of every task, in the manner of cibuildwheel's.

Long tasks (base, build, validate, push, pull, kernels build) report through one
``Log`` on stderr; results go to stdout. Sections time themselves::

    ▶ Base image
    [   3s] base rocstack-base/local:bookworm-...: reused (inputs unchanged)
    ✓ Base image (0.4 s)

``step`` lines carry the time since the task started, so a long build never looks
hung. On a CI runner sections fold: GitHub Actions ``::group::``/``::endgroup::``,
GitLab collapsible ``section_start``/``section_end`` markers. ``quiet`` keeps only
warnings, errors and failed sections; sections still record their durations (a
build manifest stores them).
"""

from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, TextIO


def detect_ci(environ=None) -> str | None:
    """``github`` or ``gitlab`` when running on that CI (their documented variables), else None."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("GITLAB_CI"):
        return "gitlab"
    return None


def _section_id(title: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", title.lower()).strip("_")[:60] or "section"


@dataclass
class Log:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    ci: str | None = field(default_factory=detect_ci)
    durations: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _color(self, code: str, text: str) -> str:
        if getattr(self.stream, "isatty", lambda: False)():
            return f"\033[{code}m{text}\033[0m"
        return text

    def step(self, message: str) -> None:
        """A progress line stamped with the time since the task started."""
        if not self.quiet:
            self._write(f"[{self.elapsed():5.0f}s] {message}")

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(f"  {message}")

    def warn(self, message: str) -> None:
        self._write(self._color("33", f"warning: {message}"))

    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        start = time.monotonic()
        stamp = int(time.time())
        key = _section_id(title)
        if not self.quiet:
            if self.ci == "github":
                self._write(f"::group::{title}")
            elif self.ci == "gitlab":
                self._write(f"\033[0Ksection_start:{stamp}:{key}[collapsed=true]\r\033[0K{title}")
            self._write(self._color("1", f"▶ {title}"))
        try:
            yield
        except BaseException:
            elapsed = self.durations[title] = time.monotonic() - start
            self._close(key)
            self._write(self._color("31", f"✗ {title} failed after {elapsed:.1f} s"))
            raise
        elapsed = self.durations[title] = time.monotonic() - start
        if not self.quiet:
            self._write(self._color("32", f"✓ {title} ({elapsed:.1f} s)"))
            self._close(key)

    def _close(self, key: str) -> None:
        if self.quiet:
            return
        if self.ci == "github":
            self._write("::endgroup::")
        elif self.ci == "gitlab":
            self._write(f"\033[0Ksection_end:{int(time.time())}:{key}\r\033[0K")


def silent() -> Log:
    """A log that prints nothing but warnings and failures (library callers, tests)."""
    return Log(quiet=True)
