"""Everything a render or a build needs, resolved once, before any work starts.

In the manner of cibuildwheel's ``compute_options`` -> ``build(options)``: the
task's flags, the recipes and the host's settings become one frozen object, and
every refusal that needs no engine happens here (unknown stack, impossible arch,
missing torch wheel, unwritable log path), so a bad input never costs a build.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from rocstack.arches import arches_slug
from rocstack.contracts import DEFAULT_STACK, logs_dir
from rocstack.errors import RocstackError
from rocstack.fsutil import check_writable
from rocstack.imaging.buildx import Builder, resolve_builder
from rocstack.imaging.context import check_torch_wheel, wheelhouse_files
from rocstack.imaging.index import IndexSettings, host_index_settings
from rocstack.recipes.catalog import Catalog, Selection, select
from rocstack.render import render_dockerfile


@dataclass(frozen=True)
class RenderOptions:
    selection: Selection
    template_dirs: tuple[Path, ...]

    def render(self) -> str:
        return render_dockerfile(self.selection, list(self.template_dirs))


def compute_render_options(stack: str | None = None, arch: str | None = None, templates: str | Path | None = None,
                           catalog: Catalog | None = None) -> RenderOptions:
    selection = select(catalog or Catalog.default(), stack or DEFAULT_STACK, arch or None)
    template_dirs: tuple[Path, ...] = ()
    if templates:
        folder = Path(templates)
        if not folder.is_dir():
            raise RocstackError(f"--templates {folder} is not a directory", "pass the folder holding your .j2 templates")
        template_dirs = (folder,)
    return RenderOptions(selection, template_dirs)


@dataclass(frozen=True)
class BuildOptions:
    render: RenderOptions
    dockerfile: str
    index: IndexSettings  # the host pip's settings, handed to the build as secrets
    wheelhouses: tuple[Path, ...]
    wheels: dict  # context path -> wheel file, from the wheelhouses
    log_path: Path  # the full build log
    log_copy: Path | None  # --log: a copy of it for the user
    no_cache: bool
    builder: Builder | None = None  # --builder, --cache-from/--cache-to: a buildx build (checked while resolving)
    cache_from: tuple[str, ...] = ()  # buildx --cache-from specs
    cache_to: tuple[str, ...] = ()

    @property
    def selection(self) -> Selection:
        return self.render.selection


def _log_path(selection: Selection) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    # the process id keeps two builds started in the same second from sharing a log
    name = f"build-{selection.stack.name}-{arches_slug(selection.targets)}-{stamp}-{os.getpid()}.log"
    return check_writable(logs_dir() / name, "the build log")


def compute_build_options(
    stack: str | None = None,
    arch: str | None = None,
    wheelhouses: list[Path] | None = None,
    templates: str | Path | None = None,
    log_copy: Path | None = None,
    no_cache: bool = False,
    catalog: Catalog | None = None,
    builder: str | None = None,
    cache_from: list[str] | None = None,
    cache_to: list[str] | None = None,
) -> BuildOptions:
    """Resolve a build: selection, wheelhouse (with its torch wheel), Dockerfile, log paths."""
    render = compute_render_options(stack, arch, templates, catalog)
    selection = render.selection
    index = host_index_settings()
    houses = tuple(wheelhouses) if wheelhouses else (tuple(index.find_links) if selection.stack.torch.wheelhouse else ())
    wheels = wheelhouse_files(list(houses))
    check_torch_wheel(selection, wheels, list(houses))
    if log_copy is not None:
        check_writable(Path(log_copy), "--log")
    dockerfile = render.render()
    froms = tuple(cache_spec(c, "--cache-from") for c in cache_from or ())
    tos = tuple(cache_spec(c, "--cache-to") for c in cache_to or ())
    chosen = None
    if builder or froms or tos:
        chosen = resolve_builder(builder)
        check_builder_sees_base(chosen, selection)
    return BuildOptions(render, dockerfile, index, houses, wheels, _log_path(selection),
                        Path(log_copy) if log_copy else None, no_cache, chosen, froms, tos)


def cache_spec(text: str, flag: str) -> str:
    """A buildx cache spec; a bare ``HOST/REPO:TAG`` means a registry cache (max mode when exporting)."""
    text = text.strip()
    if not text:
        raise RocstackError(f"{flag} is empty", f"give a registry ref, e.g. {flag} registry.local/rocstack-cache:local")
    if "type=" in text:
        return text
    if "/" not in text or text.startswith("-"):
        raise RocstackError(f"{flag} {text!r} is neither a buildx cache spec nor a registry ref",
                            f"e.g. {flag} registry.local/rocstack-cache:local or {flag} type=registry,ref=...")
    return f"type=registry,ref={text}" + (",mode=max" if flag == "--cache-to" else "")


def check_builder_sees_base(builder: Builder, selection: Selection) -> None:
    """A debootstrap base exists only in an engine: a builder outside every engine cannot FROM it."""
    if selection.stack.base.debootstrap is not None and builder.driver != "docker":
        raise RocstackError(
            f"stack {selection.stack.name} starts from a base image made in the local engine, which "
            f"{builder.describe()} cannot see",
            "use a stack whose base is a registry image (base.image), or a docker-driver builder "
            "(the engine's own BuildKit, any docker context)",
        )
