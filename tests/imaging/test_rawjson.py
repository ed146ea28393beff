"""buildx's rawjson progress, split per bake target, read by the same parser as a `build` log.

The samples are real `docker buildx bake --progress=rawjson` output of buildx 0.29.1 on this
machine's engine: two targets (a, b) where b fails and buildx cancels a, and a one-target bake
(whose vertex names carry no target prefix)."""

from __future__ import annotations

from pathlib import Path

from rocstack.imaging.progress import BuildProgress
from rocstack.imaging.rawjson import RawJsonSplitter, failed_targets

DATA = Path(__file__).parent / "data"
DOCKERFILE = "FROM x AS base\nRUN echo\nFROM base AS runtime\nRUN echo\n"


def _split(sample: str, targets: tuple[str, ...]):
    splitter = RawJsonSplitter(targets)
    progress = {t: BuildProgress(DOCKERFILE) for t in targets}
    text = []
    for line in (DATA / sample).read_text().splitlines():
        for target, plain in splitter.feed(line):
            if target is None:
                text.append(plain)
            else:
                progress[target].feed(plain)
    return progress, text


def test_two_targets_are_split_and_the_failed_one_is_named():
    progress, text = _split("buildx-rawjson-two-targets-one-fails.jsonl", ("a", "b"))
    failed = progress["b"].failed_step()
    assert failed is not None and failed.stage == "runtime" and "exit code: 3" in failed.error
    assert progress["a"].failed_step() is None  # a was cancelled by buildx, not failed
    assert [s.status for s in progress["a"].steps.values() if s.stage == "runtime"] == ["canceled"]
    assert progress["a"].summary()["base"].ran and progress["b"].summary()["base"].ran
    assert failed_targets(text) == ["b"]
    assert any("a1" in line for s in progress["a"].steps.values() for line in s.output)


def test_one_target_takes_every_vertex():
    progress, text = _split("buildx-rawjson-one-target.jsonl", ("a",))
    steps = [s for s in progress["a"].steps.values() if s.stage]
    assert steps and all(s.status in ("done", "cached") for s in steps)
    run = next(s for s in steps if s.instruction.startswith("RUN"))
    assert run.seconds > 0 and any("a none" in line for line in run.output)
    assert failed_targets(text) == []


def test_non_json_lines_are_buildx_own_lines():
    splitter = RawJsonSplitter(("a",))
    assert splitter.feed("ERROR: target a: failed to solve: boom\n") == [(None, "ERROR: target a: failed to solve: boom")]
    assert failed_targets(["ERROR: target a: failed to solve: boom", "noise"]) == ["a"]
