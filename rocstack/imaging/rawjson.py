"""buildx's ``--progress=rawjson`` stream, split per bake target into plain-progress lines.

``docker buildx bake --progress=rawjson`` prints BuildKit's SolveStatus as one JSON object
a line: vertexes (name ``[TARGET stage i/n] INSTRUCTION``, started/completed times,
``cached``, ``error``) and logs (base64 output of a vertex). This module assigns each
vertex a number and writes what BuildKit's plain progress would have printed for it
(``#N [stage i/n] ...``, ``#N 1.234 output``, ``#N DONE 2.0s`` / ``CACHED`` / ``ERROR:`` /
``CANCELED``), routed to the target named in the vertex: so one parser
(``progress.BuildProgress``) reads a ``build`` and every target of a bake alike, and each
target gets a build log that ``progress.parse_log`` reads back.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

_NAME = re.compile(r"^\[(?P<target>[A-Za-z0-9_-]+) (?P<rest>[^\]]+)\] (?P<text>.*)$")
_CANCELED = "context canceled"


def _time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{main}.{(frac or '0')[:6]:0<6}")


@dataclass
class _Vertex:
    number: int
    target: str
    title: str  # "[stage i/n] text" as plain progress prints it
    started: datetime | None = None
    finished: bool = False


@dataclass
class RawJsonSplitter:
    """Feed it rawjson lines; it returns (target, plain line) pairs. Non-JSON lines come back as (None, line).

    ``targets``: the names baked in this run. buildx prefixes vertex names with the target only when
    it bakes several; a bake of one target prints them bare, and they all belong to that target."""

    targets: tuple[str, ...] = ()
    vertices: dict = field(default_factory=dict)  # digest -> _Vertex, or None for a vertex of no target

    def feed(self, raw: str) -> list[tuple[str | None, str]]:
        line = raw.rstrip("\n")
        try:
            status = json.loads(line)
        except ValueError:
            return [(None, line)] if line.strip() else []
        if not isinstance(status, dict):
            return [(None, line)]
        out: list[tuple[str | None, str]] = []
        for vertex in status.get("vertexes") or []:
            out += self._vertex(vertex)
        for entry in status.get("logs") or []:
            out += self._log(entry)
        return out

    def _known(self, digest: str, name: str) -> _Vertex | None:
        if digest in self.vertices:
            return self.vertices[digest]
        match = _NAME.match(name or "")
        number = len([v for v in self.vertices.values() if v]) + 1
        if match and match["target"] in self.targets:
            vertex = _Vertex(number, match["target"], f"[{match['rest']}] {match['text']}")
        elif len(self.targets) == 1 and name and name != "[internal] load local bake definitions":
            vertex = _Vertex(number, self.targets[0], name)
        else:
            self.vertices[digest] = None  # bake's own work ("[internal] load local bake definitions")
            return None
        self.vertices[digest] = vertex
        return vertex

    def _vertex(self, data: dict) -> list[tuple[str, str]]:
        vertex = self._known(data.get("digest", ""), data.get("name", ""))
        if vertex is None or vertex.finished:
            return []
        out = []
        started = _time(data.get("started"))
        if started and vertex.started is None:
            vertex.started = started
            out.append((vertex.target, f"#{vertex.number} {vertex.title}"))
        completed = _time(data.get("completed"))
        if completed is None:
            return out
        if vertex.started is None:  # cached vertices may arrive already complete
            vertex.started = started or completed
            out.append((vertex.target, f"#{vertex.number} {vertex.title}"))
        vertex.finished = True
        error = data.get("error") or ""
        if error and _CANCELED in error:
            out.append((vertex.target, f"#{vertex.number} CANCELED"))
        elif error:
            out.append((vertex.target, f"#{vertex.number} ERROR: {error}"))
        elif data.get("cached"):
            out.append((vertex.target, f"#{vertex.number} CACHED"))
        else:
            seconds = (completed - vertex.started).total_seconds()
            out.append((vertex.target, f"#{vertex.number} DONE {seconds:.1f}s"))
        return out

    def _log(self, entry: dict) -> list[tuple[str, str]]:
        vertex = self.vertices.get(entry.get("vertex", ""))
        if not vertex:
            return []
        try:
            text = base64.b64decode(entry.get("data") or "").decode("utf-8", errors="replace")
        except ValueError:
            return []
        stamp = _time(entry.get("timestamp"))
        offset = (stamp - vertex.started).total_seconds() if stamp and vertex.started else 0.0
        return [(vertex.target, f"#{vertex.number} {offset:.3f} {part}") for part in text.splitlines() if part.strip()]


def failed_targets(lines: list[str]) -> list[str]:
    """Targets buildx names in its closing ``ERROR: target NAME: ...`` lines."""
    found = []
    for line in lines:
        match = re.match(r"^ERROR: target ([A-Za-z0-9_-]+): (.*)$", line.strip())
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found
