"""`rocstack build`: a stack and arch selection to a tagged image on the Docker engine.

Order of work, cheapest refusals first: resolve the selection (an arch no
component can target is refused here, before the engine is touched), check the
wheelhouse, render; then connect, make or reuse the base, stage the context,
run BuildKit, add the manifest, and only then tag.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from docker.errors import ImageNotFound

from rocstack.build import context as ctx
from rocstack.build.base import ensure_base
from rocstack.build.engine import buildkit_cli, connect
from rocstack.build.identity import CONTENT_HASH_LABEL, RUNTIME_IMAGE_LABEL, ImageName, content_hash, image_name
from rocstack.build.index import build_secret_args, host_index_settings
from rocstack.build.manifest import MANIFEST_LABEL, add_manifest, build_manifest, image_tools
from rocstack.build.paths import logs_dir
from rocstack.build.progress import DOCKERFILE_PREFIX, BuildProgress
from rocstack.build.reporter import ProgressReporter
from rocstack.build.runner import run_logged
from rocstack.errors import EngineError, RocstackError
from rocstack.fsutil import write_atomic
from rocstack.recipes.catalog import Catalog, Selection, select
from rocstack.render import BuildResources, base_reference, render_dockerfile

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


def _failure(progress: BuildProgress, roles: dict[str, str], log_path: Path, rc: int) -> BuildFailed:
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
    instruction = step.command[:100]
    tail = list(step.output)[-TAIL_LINES:] or list(progress.tail)[-TAIL_LINES:]
    return BuildFailed(
        f"{what}: `{instruction}`: {step.error}",
        f"last {len(tail)} lines above; full log: {log_path}",
        tail,
    )


def _find_finished(client, tag: str, runtime_id: str) -> str | None:
    """The id of ``tag`` when it already is this runtime image plus its manifest (a no-op rebuild)."""
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    return image.id if labels.get(RUNTIME_IMAGE_LABEL) == runtime_id else None


def _base_image_id(client, selection: Selection, reporter: ProgressReporter, note) -> tuple[str, dict]:
    stack = selection.stack
    if stack.base.debootstrap is not None:
        def say(text: str) -> None:
            note(text)
            reporter.say(text)

        result = ensure_base(client, stack, say=say)
        return result.image_id, asdict(result)
    reference = base_reference(selection)
    try:
        image_id = client.images.get(reference).id
        return image_id, {"tag": reference, "image_id": image_id}
    except ImageNotFound:
        # BuildKit pulls it; the pinned reference (digest when given) identifies it.
        return reference, {"tag": reference, "image_id": None}


def build_image(
    stack: str | None = None,
    arch: str | None = None,
    wheelhouses: list[Path] | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    template_dirs: list[Path] | None = None,
    catalog: Catalog | None = None,
    log_copy: Path | None = None,
    no_cache: bool = False,
) -> BuildResult:
    """Build and tag; ``log_copy`` also gets the full log (on success and on failure)."""
    started = time.monotonic()
    selection = select(catalog or Catalog.default(), stack, arch)
    settings = host_index_settings()
    houses = list(wheelhouses) if wheelhouses else (list(settings.find_links) if selection.stack.torch.wheelhouse else [])
    ctx.check_torch_wheel(selection, ctx.wheelhouse_files(houses), houses)
    dockerfile = render_dockerfile(selection, BuildResources.detect(), template_dirs)
    client = connect()
    run = _EngineBuild(client, buildkit_cli(), selection, dockerfile, quiet, stream)
    run.no_cache = no_cache
    log_path = logs_dir() / f"build-{selection.stack.name}-{image_name(selection, '0' * 64).slug}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "w") as log, ctx.context_lock(selection.stack.name):
            run.log, run.log_path = log, log_path
            run.header(settings)
            runtime_id = run.buildkit(settings, houses)
            image_id, finished = run.finish(runtime_id)
    finally:
        if log_copy:
            write_atomic(log_copy, log_path.read_bytes())
    elapsed = time.monotonic() - started
    stages_run = run.progress.stages_run()
    run.reporter.say(f"built {run.name.versioned} in {elapsed:.0f}s (stages run: {', '.join(stages_run) or 'none'})")
    return BuildResult(
        image_id=image_id,
        tags=[run.name.versioned, run.name.latest],
        content_hash=run.digest,
        stack=selection.stack.name,
        arches=[str(t) for t in selection.targets],
        log=str(log_path),
        stages={n: asdict(s) for n, s in run.progress.summary().items()},
        stages_run=stages_run,
        manifest=run.manifest,
        base=run.base_info,
        reused_manifest_image=finished,
        seconds=round(elapsed, 1),
        notes=list(settings.not_passed),
    )


class _EngineBuild:
    """The engine part of one build: base, context, BuildKit, manifest, tags; all logged."""

    def __init__(self, client, cli, selection: Selection, dockerfile: str, quiet: bool, stream: TextIO | None):
        self.client, self.cli, self.selection, self.dockerfile = client, cli, selection, dockerfile
        self.progress = BuildProgress(dockerfile)
        self.roles = stage_roles(selection)
        self.reporter = ProgressReporter(self.progress, self.roles, stream=stream, quiet=quiet)
        self.log: TextIO
        self.log_path: Path
        self.no_cache = False
        # Set as the build proceeds (buildkit(), then finish()).
        self.staged: ctx.StagedContext
        self.base_id = ""
        self.base_info: dict = {}
        self.digest = ""
        self.name: ImageName
        self.manifest: dict = {}

    def note(self, text: str) -> None:
        self.log.write(f"== {text}\n")
        self.log.flush()

    def header(self, settings) -> None:
        self.note(f"rocstack build: stack {self.selection.stack.name}, arches {self.selection.arch_list}")
        self.note(f"engine {self.client.version().get('Version')}, BuildKit via {' '.join(self.cli.argv)} ({self.cli.version})")
        for item in settings.not_passed:
            self.note(f"not passed into the build: {item}")
        for line in self.dockerfile.splitlines():
            self.log.write(f"{DOCKERFILE_PREFIX}{line}\n")

    def buildkit(self, settings, houses: list[Path]) -> str:
        """Base, context, the BuildKit build; returns the runtime image id."""
        self.base_id, self.base_info = _base_image_id(self.client, self.selection, self.reporter, self.note)
        self.staged = ctx.stage_context(self.selection, houses, self.dockerfile)
        self.digest = content_hash(self.selection, self.dockerfile, self.staged, self.base_id)
        self.name = image_name(self.selection, self.digest)
        self.reporter.say(f"building {self.name.versioned} ({len(self.progress.stages)} stages; log {self.log_path})")
        with tempfile.TemporaryDirectory(prefix="rocstack-iid-") as tmp, build_secret_args(settings) as secret_args:
            iidfile = Path(tmp) / "iid"
            argv = [*self.cli.argv, "--progress=plain", "--iidfile", str(iidfile), "-f", str(self.staged.dockerfile),
                    *(["--no-cache"] if self.no_cache else []), *secret_args, str(self.staged.directory)]
            self.note("$ " + " ".join(argv))
            rc = run_logged(argv, self.cli.environment(), self.log, self.progress, self.reporter.on_event, self.reporter.on_idle)
            if rc != 0:
                failure = _failure(self.progress, self.roles, self.log_path, rc)
                self.note(f"rocstack: FAILED: {failure.one_line()}")
                raise failure
            return iidfile.read_text().strip()

    def finish(self, runtime_id: str) -> tuple[str, bool]:
        """Manifest image (or the existing one for a no-op rebuild), then both tags."""
        existing = _find_finished(self.client, self.name.versioned, runtime_id)
        if existing:
            image_id = existing
            self.manifest = json.loads(self.client.images.get(existing).labels[MANIFEST_LABEL])
            self.reporter.say(f"no change: {self.name.versioned} already is this build")
        else:
            self.reporter.say("adding the build manifest")
            refs = json.loads(self.client.images.get(runtime_id).labels.get("io.rocstack.components", "{}"))
            tools = {
                **image_tools(self.client, runtime_id),
                "docker-engine": self.client.version().get("Version", "?"),
                "docker-cli": self.cli.version,
            }
            stage_seconds = {n: s.seconds for n, s in self.progress.summary().items()}
            self.manifest = build_manifest(self.selection, self.staged, self.base_id, tools, stage_seconds, refs)
            labels = {CONTENT_HASH_LABEL: self.digest, RUNTIME_IMAGE_LABEL: runtime_id}
            image_id = add_manifest(self.client, runtime_id, self.manifest, labels, self.log)
        image = self.client.images.get(image_id)
        for tag in (self.name.versioned, self.name.latest):
            repository, _, version = tag.rpartition(":")
            if not image.tag(repository, version):
                raise EngineError(f"the engine refused to tag {image_id[:19]} as {tag}", "see the engine log")
        self.note(f"rocstack: built {image_id} as {self.name.versioned} and {self.name.latest}")
        self.note(f"stages run: {', '.join(self.progress.stages_run()) or 'none (all cached)'}")
        return image_id, bool(existing)
