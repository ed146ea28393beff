"""A sectioned progress log with timings, in the manner of cibuildwheel's.

Long tasks (build, validate, kernels build) print clear sections to stderr:

    ▶ Building base image (stage 1/4)
      ...
    ✓ Building base image (12.3 s)

``quiet`` keeps only failures and the final line; sections still time themselves
so callers can record durations (e.g. in a build manifest).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, TextIO


@dataclass
class Log:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    durations: dict[str, float] = field(default_factory=dict)

    def _color(self, code: str, text: str) -> str:
        if getattr(self.stream, "isatty", lambda: False)():
            return f"\033[{code}m{text}\033[0m"
        return text

    def info(self, message: str) -> None:
        if not self.quiet:
            print(f"  {message}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        print(self._color("33", f"  warning: {message}"), file=self.stream, flush=True)

    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        if not self.quiet:
            print(self._color("1", f"▶ {title}"), file=self.stream, flush=True)
        start = time.monotonic()
        try:
            yield
        except BaseException:
            elapsed = time.monotonic() - start
            self.durations[title] = elapsed
            print(self._color("31", f"✗ {title} failed after {elapsed:.1f} s"), file=self.stream, flush=True)
            raise
        elapsed = time.monotonic() - start
        self.durations[title] = elapsed
        if not self.quiet:
            print(self._color("32", f"✓ {title} ({elapsed:.1f} s)"), file=self.stream, flush=True)
