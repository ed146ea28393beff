"""``rocstack bake``: write the matrix as a buildx bake file, or run it and record every image.

Writing (``--out`` / ``--print``) stages each stack's context and the pip settings (as
secret files under $ROCSTACK_HOME/bake/) and needs no engine. Running (``--run``) also
makes or reuses each stack's base in the builder's engine, runs ``docker buildx bake``
with ``--progress=rawjson`` (split per target into live progress and one build log per
target) and ``--metadata-file``, then records each image that built as ``build`` does:
manifest layer and labels, then tags. buildx cancels the other targets when one fails,
so the targets that did not fail are baked again (their finished steps come from the
cache) until each has built or failed; a failed target is never tagged.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rocstack.engine import connect
from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic
from rocstack.imaging import context as ctx
from rocstack.imaging.bake_options import BakeOptions, MatrixCell, bake_dir
from rocstack.imaging.bakefile import MatrixEntry, Secrets, bake_document, dumps
from rocstack.imaging.base import resolve_base
from rocstack.imaging.builder import describe_failure, stage_roles
from rocstack.imaging.buildx import buildx_cli
from rocstack.imaging.identity import content_hash, image_name
from rocstack.imaging.progress import DOCKERFILE_PREFIX, BuildProgress
from rocstack.imaging.rawjson import RawJsonSplitter, failed_targets
from rocstack.imaging.record import BuildInputs, record_image
from rocstack.imaging.reporter import ProgressReporter
from rocstack.imaging.runner import run_logged
from rocstack.log import Log
from rocstack.render import base_reference


@dataclass
class TargetResult:
    target: str
    stack: str
    arches: list[str]
    status: str  # built | failed
    tags: list[str] = field(default_factory=list)
    image_id: str | None = None
    error: str | None = None
    log: str | None = None
    stages_run: list[str] = field(default_factory=list)
    manifest: dict | None = None


@dataclass
class BakeResult:
    bake_file: str
    targets: list[TargetResult]
    rounds: int
    seconds: float

    @property
    def failed(self) -> list[TargetResult]:
        return [t for t in self.targets if t.status != "built"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _secrets(options: BakeOptions) -> Secrets:
    """The host pip's settings as files buildx mounts as secrets (0600, under $ROCSTACK_HOME/bake)."""
    folder = bake_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    conf = folder / "pip.conf"
    write_atomic(conf, options.index.pip_conf())
    os.chmod(conf, 0o600)
    return Secrets(conf, options.index.cert)


def _stage(options: BakeOptions) -> dict[str, ctx.StagedContext]:
    """One staged context per stack (its arch sets share it; each target carries its own Dockerfile)."""
    staged = {}
    for cell in options.cells:
        name = cell.selection.stack.name
        if name not in staged:
            staged[name] = ctx.stage_context(cell.selection, options.wheels, cell.dockerfile)
    return staged


def _entries(options: BakeOptions, staged: dict[str, ctx.StagedContext]) -> list[MatrixEntry]:
    return [MatrixEntry(c.selection, c.dockerfile, staged[c.selection.stack.name].directory) for c in options.cells]


def _locks(stack: ExitStack, options: BakeOptions) -> None:
    for name in sorted({c.selection.stack.name for c in options.cells}):  # sorted: no lock-order deadlock
        stack.enter_context(ctx.context_lock(name))


def write_bake_file(options: BakeOptions) -> str:
    """The bake file text (also written to ``options.out`` when given)."""
    with ExitStack() as locks:
        _locks(locks, options)
        document = bake_document(_entries(options, _stage(options)), _secrets(options), options.variables)
    text = dumps(document)
    if options.out:
        write_atomic(options.out, text)
    return text


@dataclass
class _Target:
    """A target while it bakes: its cell, inputs, progress and log."""

    cell: MatrixCell
    entry: MatrixEntry
    inputs: BuildInputs
    progress: BuildProgress
    reporter: ProgressReporter
    log_path: Path
    handle: object


class _Say:
    """The task's log with the target's name in front of each line."""

    def __init__(self, log: Log, name: str):
        self.log, self.name = log, name

    def step(self, text: str) -> None:
        self.log.step(f"{self.name}: {text}")


def _open_target(options: BakeOptions, cell: MatrixCell, entry: MatrixEntry, staged, bases: dict, log: Log,
                 exits: ExitStack) -> _Target:
    selection = cell.selection
    base_id, base_info = bases[selection.stack.name]
    digest = content_hash(selection, cell.dockerfile, staged[selection.stack.name], base_id)
    inputs = BuildInputs(selection, staged[selection.stack.name], base_id, base_info, digest, image_name(selection, digest))
    log_path = options.log_path.with_name(options.log_path.stem + f"-{entry.name}.log")
    handle = exits.enter_context(open(log_path, "w", buffering=1))  # line-buffered: a person may tail it
    handle.write(f"== rocstack bake: target {entry.name}, stack {selection.stack.name}, arches {selection.arch_list}\n")
    for line in cell.dockerfile.splitlines():
        handle.write(f"{DOCKERFILE_PREFIX}{line}\n")
    progress = BuildProgress(cell.dockerfile)
    reporter = ProgressReporter(progress, stage_roles(selection), _Say(log, entry.name))  # type: ignore[arg-type]
    return _Target(cell, entry, inputs, progress, reporter, log_path, handle)


class _Router:
    """Routes buildx's rawjson lines to each target's log and progress; buildx's own lines to the bake log."""

    def __init__(self, targets: dict[str, "_Target"], main_log):
        self.targets, self.main_log = targets, main_log
        self.splitter = RawJsonSplitter(tuple(targets))
        self.text_lines: list[str] = []

    def feed(self, raw: str):
        for name, line in self.splitter.feed(raw):
            target = self.targets.get(name) if name else None
            if target is None:
                self.text_lines.append(line)
                self.main_log.write(line + "\n")
                continue
            target.handle.write(line + "\n")
            event = target.progress.feed(line)
            if event:
                target.reporter.on_event(*event)
        return None

    def on_idle(self) -> None:
        for target in self.targets.values():
            target.handle.flush()
            target.reporter.on_idle()


def _bake_round(options: BakeOptions, targets: dict[str, _Target], names: list[str], bake_file: Path,
                main_log) -> tuple[int, dict, list[str]]:
    """One ``docker buildx bake`` of ``names``: exit status, metadata, buildx's own lines."""
    cli = buildx_cli()
    with tempfile.TemporaryDirectory(prefix="rocstack-bake-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        argv = options.builder.argv(cli, "bake", "-f", str(bake_file), "--progress=rawjson",
                                    "--metadata-file", str(metadata),
                                    *(a for item in options.target_sets for a in ("--set", item)), *names)
        main_log.write("$ " + " ".join(argv) + "\n")
        main_log.flush()
        router = _Router({n: targets[n] for n in names}, main_log)
        rc = run_logged(argv, dict(os.environ), main_log, router, lambda *event: None, router.on_idle, echo=False)
        data = json.loads(metadata.read_text()) if metadata.exists() else {}
    return rc, data, router.text_lines


def _runtime_id(client, metadata: dict) -> str | None:
    """The image a target loaded: the config digest (classic image store) or the manifest digest
    (containerd image store, where that is the image id); None when the engine has neither."""
    for key in ("containerimage.config.digest", "containerimage.digest"):
        value = metadata.get(key)
        if value:
            try:
                return client.images.get(value).id
            except Exception:  # noqa: BLE001 - try the other key; none found is reported by the caller
                continue
    return None


def _record(client, target: _Target, metadata: dict, cli_version: str, log: Log) -> TargetResult:
    selection = target.cell.selection
    base = TargetResult(target.entry.name, selection.stack.name, [str(t) for t in selection.targets], "failed",
                        log=str(target.log_path), stages_run=target.progress.stages_run())
    runtime_id = _runtime_id(client, metadata)
    if runtime_id is None:
        base.error = f"buildx reported no image for target {target.entry.name} in the engine ({sorted(metadata)})"
        return base
    stage_seconds = {n: st.seconds for n, st in target.progress.summary().items()}
    try:
        recorded = record_image(client, target.inputs, runtime_id, stage_seconds, cli_version,
                                _Say(log, target.entry.name), target.handle)  # type: ignore[arg-type]
    except RocstackError as exc:
        base.error = exc.one_line()
        return base
    name = target.inputs.name
    base.status, base.tags, base.image_id, base.manifest = "built", [name.versioned, name.latest], recorded.image_id, recorded.manifest
    log.step(f"{target.entry.name}: built {name.versioned}")
    return base


def _failure_text(target: _Target, buildx_lines: list[str], rc: int) -> str:
    roles = stage_roles(target.cell.selection)
    failure = describe_failure(target.progress, roles, target.log_path, rc)
    if target.progress.failed_step() is None:
        said = [line for line in buildx_lines if line.startswith(f"ERROR: target {target.entry.name}:")]
        if said:
            return said[-1].removeprefix("ERROR: ")
    return failure.one_line()


def run_bake(options: BakeOptions, log: Log) -> BakeResult:
    """Bake every target on ``options.builder``; record each that built. Never raises for a failed target."""
    builder = options.builder
    assert builder is not None
    client = connect(address=builder.engine_host if builder.loads_into_other_engine else None)
    cli = buildx_cli()
    options.log_path.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, TargetResult] = {}
    rounds = 0
    with ExitStack() as exits:
        _locks(exits, options)
        main_log = exits.enter_context(open(options.log_path, "w"))
        main_log.write(f"== rocstack bake on {builder.describe()} ({cli.version})\n")
        staged = _stage(options)
        entries = _entries(options, staged)
        bases = {}
        for cell in options.cells:  # made or reused in the engine the builder builds in, once per stack
            if cell.selection.stack.name not in bases:
                bases[cell.selection.stack.name] = resolve_base(client, cell.selection.stack,
                                                                base_reference(cell.selection), log.step)
        targets = {e.name: _open_target(options, c, e, staged, bases, log, exits) for c, e in zip(options.cells, entries)}
        document = bake_document(entries, _secrets(options), options.variables, for_run=True)
        bake_file = bake_dir() / f"run-{os.getpid()}.json"
        write_atomic(bake_file, dumps(document))
        log.step(f"baking {len(targets)} target(s) on {builder.describe()}: {', '.join(targets)} (log {options.log_path})")
        pending = list(targets)
        while pending:
            rounds += 1
            rc, metadata, lines = _bake_round(options, targets, pending, bake_file, main_log)
            for name in pending:
                if name in metadata:
                    results[name] = _record(client, targets[name], metadata[name], cli.version, log)
            failed = [n for n in failed_targets(lines) if n in pending and n not in results]
            if rc == 0:  # a target buildx built but did not describe cannot be recorded
                failed = [n for n in pending if n not in results]
            elif not failed:  # buildx failed before any target did (bad file, builder gone)
                failed = [n for n in pending if n not in results]
            for name in failed:
                target = targets[name]
                error = _failure_text(target, lines, rc) if rc else f"buildx wrote no metadata for target {name}"
                results[name] = TargetResult(name, target.cell.selection.stack.name,
                                             [str(t) for t in target.cell.selection.targets], "failed", error=error,
                                             log=str(target.log_path), stages_run=target.progress.stages_run())
                target.handle.write(f"== rocstack: FAILED: {error}\n")
                log.warn(f"{name}: {error}")
            pending = [n for n in pending if n not in results]
        bake_file.unlink(missing_ok=True)
    ordered = [results[name] for name in targets]
    return BakeResult(str(options.log_path), ordered, rounds, round(log.elapsed(), 1))
