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
    return BuildOptions(render, dockerfile, index, houses, wheels, _log_path(selection),
                        Path(log_copy) if log_copy else None, no_cache)
