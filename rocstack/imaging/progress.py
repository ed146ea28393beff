"""Reading BuildKit's plain progress output: steps, stages, what ran, what was cached.

BuildKit (``--progress=plain``) prints one vertex per ``#<id>`` with a title like
``[build-rocstack-kernels 3/4] RUN ...``, its output lines, and a terminal line
(``DONE 2.9s``, ``CACHED``, ``ERROR: ...``, ``CANCELED``). This module turns that
stream into per-step and per-stage facts; the build log is the evidence, so the
same parser proves after the fact which stages a rebuild really ran.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

_TITLE = re.compile(r"^#(?P<id>\d+) \[(?P<stage>[^\]\s]+)(?: (?P<index>\d+)/(?P<count>\d+))?\] (?P<text>.*)$")
_PLAIN_TITLE = re.compile(r"^#(?P<id>\d+) (?P<text>[a-z][^:]*)$")
_DONE = re.compile(r"^#(?P<id>\d+) DONE (?P<seconds>[\d.]+)s$")
_CACHED = re.compile(r"^#(?P<id>\d+) CACHED$")
_ERROR = re.compile(r"^#(?P<id>\d+) ERROR:? ?(?P<text>.*)$")
_CANCELED = re.compile(r"^#(?P<id>\d+) CANCELED$")
_OUTPUT = re.compile(r"^#(?P<id>\d+) (?P<time>\d+\.\d+) (?P<text>.*)$")
_MOUNT = re.compile(r"--mount=\S+")
_FROM = re.compile(r"(?im)^\s*FROM\s+(?:--\S+\s+)*(?P<ref>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$")


def stage_names(dockerfile: str) -> list[str]:
    """Stage names in Dockerfile order (unnamed stages are ``stage-<n>``, as BuildKit calls them)."""
    names = []
    for number, match in enumerate(_FROM.finditer(dockerfile)):
        names.append(match.group("name") or f"stage-{number}")
    return names


@dataclass
class Step:
    id: int
    stage: str
    index: int
    count: int
    instruction: str
    status: str = "running"  # running | done | cached | error | canceled
    seconds: float = 0.0
    error: str = ""
    output: deque = field(default_factory=lambda: deque(maxlen=200))

    @property
    def command(self) -> str:
        """The instruction without its ``--mount=`` options (what a person wants to read)."""
        return " ".join(_MOUNT.sub("", self.instruction).split())

    @property
    def is_from(self) -> bool:
        return self.instruction.upper().startswith("FROM ")

    @property
    def executed(self) -> bool:
        """Did this step do work (not served from cache)? FROM steps only resolve an image."""
        return not self.is_from and self.status in ("done", "error", "canceled")


@dataclass
class StageSummary:
    name: str
    ran: bool
    steps_run: int
    steps_cached: int
    seconds: float


class BuildProgress:
    """Feed it BuildKit plain-progress lines; it keeps the state of every step."""

    def __init__(self, dockerfile: str = ""):
        self.stages = stage_names(dockerfile)
        self.steps: dict[int, Step] = {}
        self.other_errors: list[str] = []
        self.internal: dict[int, str] = {}  # BuildKit's own vertices ("load metadata for ...")
        self.internal_errors: list[tuple[str, str]] = []  # (title, error)
        self.tail: deque[str] = deque(maxlen=400)

    def feed(self, raw: str) -> tuple[str, Step] | None:
        """Consume one line; returns (event, step) for step changes: start, output, cached, done, error."""
        line = raw.rstrip("\n")
        self.tail.append(line)
        if m := _TITLE.match(line):
            step_id = int(m["id"])
            if m["stage"] == "internal":
                self.internal[step_id] = m["text"]
                return None
            if step_id in self.steps:
                return None
            step = Step(step_id, m["stage"], int(m["index"] or 0), int(m["count"] or 0), m["text"])
            self.steps[step_id] = step
            return "start", step
        if (m := _PLAIN_TITLE.match(line)) and int(m["id"]) not in self.steps and m["text"] not in ("CACHED", "CANCELED"):
            # Work outside any stage, such as "exporting to image" (stage "").
            step = Step(int(m["id"]), "", 0, 0, m["text"])
            self.steps[step.id] = step
            return "start", step
        if m := _DONE.match(line):
            return self._finish(int(m["id"]), "done", float(m["seconds"]))
        if m := _CACHED.match(line):
            return self._finish(int(m["id"]), "cached", 0.0)
        if m := _CANCELED.match(line):
            return self._finish(int(m["id"]), "canceled", 0.0)
        if m := _ERROR.match(line):
            step = self.steps.get(int(m["id"]))
            if step is None:
                if int(m["id"]) in self.internal:
                    self.internal_errors.append((self.internal[int(m["id"])], m["text"]))
                self.other_errors.append(m["text"])
                return None
            step.status, step.error = "error", m["text"]
            return "error", step
        if m := _OUTPUT.match(line):
            step = self.steps.get(int(m["id"]))
            if step is not None:
                step.output.append(m["text"])
                return "output", step
            return None
        if line.startswith("error:") or line.startswith("ERROR:"):
            self.other_errors.append(line)
        return None

    def _finish(self, step_id: int, status: str, seconds: float) -> tuple[str, Step] | None:
        step = self.steps.get(step_id)
        if step is None:
            return None
        if step.status != "error":
            step.status = status
        step.seconds = seconds
        return status, step

    # --- questions asked after (or during) the build ---------------------------------

    def stage_number(self, stage: str) -> tuple[int, int]:
        """1-based position of ``stage`` among the Dockerfile's stages, and their count."""
        if stage in self.stages:
            return self.stages.index(stage) + 1, len(self.stages)
        return 0, len(self.stages)

    def running(self) -> list[Step]:
        return [s for s in self.steps.values() if s.status == "running" and not s.is_from and s.stage]

    def failed_step(self) -> Step | None:
        failed = [s for s in self.steps.values() if s.status == "error"]
        return failed[0] if failed else None

    def summary(self) -> dict[str, StageSummary]:
        """Per stage (Dockerfile order): whether any step ran, counts and seconds of work."""
        out: dict[str, StageSummary] = {}
        names = list(self.stages) + sorted({s.stage for s in self.steps.values()} - set(self.stages) - {""})
        for name in names:
            steps = [s for s in self.steps.values() if s.stage == name and not s.is_from]
            run = [s for s in steps if s.executed]
            out[name] = StageSummary(
                name=name,
                ran=bool(run),
                steps_run=len(run),
                steps_cached=sum(1 for s in steps if s.status == "cached"),
                seconds=round(sum(s.seconds for s in run), 1),
            )
        return out

    def stages_run(self) -> list[str]:
        return [name for name, summary in self.summary().items() if summary.ran]


DOCKERFILE_PREFIX = "dockerfile| "


def parse_log(text: str, dockerfile: str | None = None) -> BuildProgress:
    """Re-read a saved build log (the evidence a benchmark or a person can check later).

    rocstack's logs carry the rendered Dockerfile as ``dockerfile| `` lines, which
    give the stage order when ``dockerfile`` is not passed.
    """
    if dockerfile is None:
        dockerfile = "\n".join(
            line[len(DOCKERFILE_PREFIX):] for line in text.splitlines() if line.startswith(DOCKERFILE_PREFIX)
        )
    progress = BuildProgress(dockerfile)
    for line in text.splitlines():
        progress.feed(line)
    return progress
