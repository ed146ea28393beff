"""`rocstack build`: resolved build options to a tagged image on the Docker engine.

Order of work, cheapest refusals first: ``compute_build_options`` resolves the
selection (an arch no component can target is refused before the engine is
touched), the wheelhouse, the Dockerfile and the log paths; then ``build_image``
connects, makes or reuses the base, stages the context, runs BuildKit, adds the
manifest, and only then tags.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO


from rocstack.contracts import LABEL_CONTENT_HASH, LABEL_MANIFEST, LABEL_RUNTIME_IMAGE
from rocstack.engine import BuildKitCli, buildkit_cli, connect, find_by_label
from rocstack.errors import EngineError, RocstackError
from rocstack.fsutil import write_atomic
from rocstack.imaging import context as ctx
from rocstack.imaging.base import resolve_base
from rocstack.imaging.buildx import buildx_cli
from rocstack.imaging.identity import ImageName, content_hash, image_name
from rocstack.imaging.index import build_secret_args
from rocstack.imaging.record import BuildInputs, Recorded, record_image
from rocstack.imaging.options import BuildOptions
from rocstack.imaging.progress import DOCKERFILE_PREFIX, BuildProgress
from rocstack.imaging.reporter import ProgressReporter
from rocstack.imaging.runner import run_logged
from rocstack.log import Log
from rocstack.recipes.catalog import Selection
from rocstack.render import base_reference, source_refs

TAIL_LINES = 40
STAGE_ROLES = {"base": "OS + venv", "python-env": "torch, triton, rocstack", "runtime": "wheels + validation suite"}


class BuildFailed(RocstackError):
    exit_code = 1

    def __init__(self, message: str, hint: str, tail: list[str]):
        super().__init__(message, hint)
        self.tail = tail


@dataclass
class BuildResult:
    image_id: str
    tags: list[str]
    content_hash: str
    stack: str
    arches: list[str]
    log: str
    stages: dict[str, dict]
    stages_run: list[str]
    manifest: dict
    base: dict
    reused_manifest_image: bool
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def stage_roles(selection: Selection) -> dict[str, str]:
    """Stage name -> what it builds, for progress lines (builder stages are ``build-<component>``)."""
    roles = dict(STAGE_ROLES)
    for recipe in selection.components:
        roles[f"build-{recipe.name}"] = recipe.name
    return roles


def failing_command(output: list[str]) -> str | None:
    """The last command a builder's ``set -x`` echoed (``+ cmd``; nested shells echo ``++``): the one that
    failed, since the stage's commands are one ``&&`` chain. Long commands are cut at 160 characters."""
    for line in reversed(output):
        if line.startswith("+ ") and not line.startswith("+ [ "):
            command = line[2:].strip()
            return command if len(command) <= 160 else command[:157] + "..."
    return None


def describe_failure(progress: BuildProgress, roles: dict[str, str], log_path: Path, rc: int) -> BuildFailed:
    step = progress.failed_step()
    for title, error in progress.internal_errors:
        if title.startswith("load metadata for "):
            image = title[len("load metadata for "):]
            return BuildFailed(
                f"cannot get the base image {image}: {error}",
                "this engine cannot pull it (no registry reachable?): `docker load` it here, "
                f"or build the local stack; full log: {log_path}",
                list(progress.tail)[-TAIL_LINES:],
            )
    if step is None:
        reason = progress.other_errors[-1] if progress.other_errors else f"docker build exited {rc}"
        # No step failed: the Dockerfile, the context or the engine itself did.
        return BuildFailed(f"the build failed: {reason}", f"last lines above; full log: {log_path}", list(progress.tail)[-TAIL_LINES:])
    number, total = progress.stage_number(step.stage)
    role = roles.get(step.stage, step.stage)
    where = f"stage {step.stage} ({number}/{total}), step {step.index}/{step.count}"
    what = f"component {role} failed in {where}" if step.stage.startswith("build-") else f"{where} ({role}) failed"
    instruction = failing_command(list(step.output)) or step.command[:100]
    tail = list(step.output)[-TAIL_LINES:] or list(progress.tail)[-TAIL_LINES:]
    return BuildFailed(
        f"{what}: `{instruction}`: {step.error}",
        f"last {len(tail)} lines above; full log: {log_path}",
        tail,
    )


class _BuildLog:
    """The full build log on disk: notes of rocstack's own, then everything BuildKit prints."""

    def __init__(self, handle: TextIO, path: Path):
        self.handle, self.path = handle, path

    def note(self, text: str) -> None:
        self.handle.write(f"== {text}\n")
        self.handle.flush()


@dataclass(frozen=True)
class _Session:
    """One build's fixed parts, made once in build_image and passed down (nothing is set later)."""

    options: BuildOptions
    client: object  # docker.DockerClient
    cli: BuildKitCli
    log: Log
    build_log: _BuildLog
    progress: BuildProgress

    @property
    def selection(self) -> Selection:
        return self.options.selection


@dataclass(frozen=True)
class _Prepared:
    """What the BuildKit build starts from: base image, staged context, and the image name they give."""

    base_id: str
    base_info: dict
    staged: ctx.StagedContext
    digest: str
    name: ImageName


def _header(s: _Session) -> None:
    s.build_log.note(f"rocstack build: stack {s.selection.stack.name}, arches {s.selection.arch_list}")
    s.build_log.note(f"engine {s.client.version().get('Version')}, BuildKit via {' '.join(s.cli.argv)} ({s.cli.version})")
    for item in s.options.index.not_passed:
        s.build_log.note(f"not passed into the build: {item}")
    for line in s.options.dockerfile.splitlines():
        s.build_log.handle.write(f"{DOCKERFILE_PREFIX}{line}\n")


def _base_image(s: _Session) -> tuple[str, dict]:
    def say(text: str) -> None:
        s.build_log.note(text)
        s.log.step(text)

    return resolve_base(s.client, s.selection.stack, base_reference(s.selection), say)


def _prepare(s: _Session) -> _Prepared:
    base_id, base_info = _base_image(s)
    staged = ctx.stage_context(s.selection, s.options.wheels, s.options.dockerfile)
    digest = content_hash(s.selection, s.options.dockerfile, staged, base_id)
    return _Prepared(base_id, base_info, staged, digest, image_name(s.selection, digest))


def _run_buildkit(s: _Session, prepared: _Prepared) -> str:
    """The BuildKit build of the staged context; returns the runtime image id."""
    roles = stage_roles(s.selection)
    reporter = ProgressReporter(s.progress, roles, s.log)
    staged = prepared.staged
    with tempfile.TemporaryDirectory(prefix="rocstack-iid-") as tmp, build_secret_args(s.options.index) as secret_args:
        iidfile = Path(tmp) / "iid"
        argv = [*s.cli.argv, "--progress=plain", "--iidfile", str(iidfile), "-f", str(staged.dockerfile),
                *(["--no-cache"] if s.options.no_cache else []), *secret_args, str(staged.directory)]
        s.build_log.note("$ " + " ".join(argv))
        rc = run_logged(argv, s.cli.environment(), s.build_log.handle, s.progress, reporter.on_event, reporter.on_idle)
        if rc != 0:
            failure = describe_failure(s.progress, roles, s.build_log.path, rc)
            s.build_log.note(f"rocstack: FAILED: {failure.one_line()}")
            raise failure
        return iidfile.read_text().strip()


def _finish(s: _Session, prepared: _Prepared, runtime_id: str) -> Recorded:
    stage_seconds = {n: st.seconds for n, st in s.progress.summary().items()}
    inputs = BuildInputs(s.selection, prepared.staged, prepared.base_id, prepared.base_info, prepared.digest, prepared.name)
    recorded = record_image(s.client, inputs, runtime_id, stage_seconds, s.cli.version, s.log, s.build_log.handle)
    s.build_log.note(f"stages run: {', '.join(s.progress.stages_run()) or 'none (all cached)'}")
    return recorded


def _build_cli(options: BuildOptions) -> BuildKitCli:
    """The engine's BuildKit through the docker CLI, or ``docker buildx build`` for --builder / caches."""
    if options.builder is None:
        return buildkit_cli()
    buildx = buildx_cli()
    caches = [*(a for c in options.cache_from for a in ("--cache-from", c)),
              *(a for c in options.cache_to for a in ("--cache-to", c))]
    return BuildKitCli(tuple(options.builder.argv(buildx, "build") + ["--load", *caches]), (), buildx.version)


def build_image(options: BuildOptions, log: Log) -> BuildResult:
    """Build and tag; ``options.log_copy`` also gets the full log (on success and on failure)."""
    builder = options.builder
    # a docker-driver builder of another context loads into that context's engine: record there
    client = connect(address=builder.engine_host if builder and builder.loads_into_other_engine else None)
    cli = _build_cli(options)
    options.log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(options.log_path, "w") as handle, ctx.context_lock(options.selection.stack.name):
            s = _Session(options, client, cli, log, _BuildLog(handle, options.log_path), BuildProgress(options.dockerfile))
            _header(s)
            prepared = _prepare(s)
            log.step(f"building {prepared.name.versioned} ({len(s.progress.stages)} stages; log {options.log_path})")
            finished = _finish(s, prepared, _run_buildkit(s, prepared))
    finally:
        if options.log_copy and options.log_path.exists():
            write_atomic(options.log_copy, options.log_path.read_bytes())
    name, stages_run = prepared.name, s.progress.stages_run()
    log.step(f"built {name.versioned} in {log.elapsed():.0f}s (stages run: {', '.join(stages_run) or 'none'})")
    return BuildResult(
        image_id=finished.image_id,
        tags=[name.versioned, name.latest],
        content_hash=prepared.digest,
        stack=options.selection.stack.name,
        arches=[str(t) for t in options.selection.targets],
        log=str(options.log_path),
        stages={n: asdict(st) for n, st in s.progress.summary().items()},
        stages_run=stages_run,
        manifest=finished.manifest,
        base=prepared.base_info,
        reused_manifest_image=finished.reused,
        seconds=round(log.elapsed(), 1),
        notes=list(options.index.not_passed),
    )
