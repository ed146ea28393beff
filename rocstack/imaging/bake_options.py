"""``rocstack bake``, resolved once: the matrix, its rendered Dockerfiles, contexts, variables.

Every refusal that needs no engine happens here (unknown stack, an arch set a component
cannot target, a missing torch wheel, a bad ``--set`` or ``--cache``, an unknown or
unreachable builder for ``--run``), before a context is staged or a build starts.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rocstack.contracts import DEFAULT_STACK, logs_dir, rocstack_home
from rocstack.errors import RocstackError
from rocstack.fsutil import check_writable
from rocstack.imaging.bakefile import CACHE_VARIABLE, PREFIX_VARIABLE, VARIABLES
from rocstack.imaging.buildx import Builder, resolve_builder
from rocstack.imaging.context import check_torch_wheel, wheelhouse_files
from rocstack.imaging.identity import image_prefix
from rocstack.imaging.index import IndexSettings, host_index_settings
from rocstack.imaging.options import RenderOptions, check_builder_sees_base
from rocstack.registry.oci import parse_registry
from rocstack.recipes.catalog import Catalog, Selection, select

# buildx --set: TARGET.KEY[.SUBKEY]=VALUE, TARGET may be a glob (*)
_TARGET_SET = re.compile(r"^[A-Za-z0-9_*?\[\]-]+\.[a-z-]+(\.[^=]+)?=")


@dataclass(frozen=True)
class MatrixCell:
    """One stack x arch set of the matrix and its rendered Dockerfile."""

    selection: Selection
    dockerfile: str


@dataclass(frozen=True)
class BakeOptions:
    cells: tuple[MatrixCell, ...]
    variables: dict  # bake variable -> default (ROCSTACK_IMAGE_PREFIX, ROCSTACK_CACHE_REPO)
    target_sets: tuple[str, ...]  # buildx --set overrides, handed to `buildx bake` on --run
    index: IndexSettings
    wheels: dict  # context path -> wheel file
    wheelhouses: tuple[Path, ...]
    out: Path | None
    run: bool
    builder: Builder | None
    log_path: Path


def _arch_sets(arches: list[str]) -> list[str | None]:
    sets = [a.strip() for a in arches if a.strip()]
    return sets or [None]  # None: each stack's default arches


def _variables(cache: str | None, sets: list[str]) -> tuple[dict, tuple[str, ...]]:
    variables = {PREFIX_VARIABLE: image_prefix(), CACHE_VARIABLE: ""}
    if cache:
        ref = parse_registry(cache)  # HOST[:PORT]/REPO, refused in one line otherwise
        if not ref.repository:
            raise RocstackError(f"--cache {cache} names no repository", "give HOST/REPO, e.g. --cache registry.local:5000/rocstack-cache")
        variables[CACHE_VARIABLE] = str(ref)
    target_sets = []
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq:
            raise RocstackError(f"--set {item!r} has no '='", f"write NAME=VALUE ({', '.join(VARIABLES)}) or TARGET.KEY=VALUE")
        if name in VARIABLES:
            variables[name] = value
        elif _TARGET_SET.match(item):
            target_sets.append(item)
        else:
            raise RocstackError(f"--set {item!r} is neither a variable ({', '.join(VARIABLES)}) nor TARGET.KEY=VALUE",
                                "e.g. --set ROCSTACK_IMAGE_PREFIX=registry.local/team or --set '*.platform=linux/amd64'")
    return variables, tuple(target_sets)


def compute_bake_options(stack: str = DEFAULT_STACK, arches: list[str] | None = None, cache: str | None = None,
                         sets: list[str] | None = None, out: str | None = None, run: bool = False,
                         builder: str | None = None, wheelhouses: list[Path] | None = None,
                         templates: str | None = None, catalog: Catalog | None = None) -> BakeOptions:
    catalog = catalog or Catalog.default()
    stacks = [s.strip() for s in (stack or DEFAULT_STACK).split(",") if s.strip()]
    if len(set(stacks)) != len(stacks):
        raise RocstackError(f"--stack {stack} names a stack twice", "list each stack once")
    template_dirs: tuple[Path, ...] = ()
    if templates:
        if not Path(templates).is_dir():
            raise RocstackError(f"--templates {templates} is not a directory", "pass the folder holding your .j2 templates")
        template_dirs = (Path(templates),)
    cells, seen = [], set()
    for name in stacks:
        for arch in _arch_sets(arches or []):
            selection = select(catalog, name, arch)
            key = (name, selection.arch_list)
            if key in seen:
                raise RocstackError(f"stack {name} with arches {selection.arch_list} is in the matrix twice",
                                    "give each --arch set once")
            seen.add(key)
            cells.append(MatrixCell(selection, RenderOptions(selection, template_dirs).render()))
    variables, target_sets = _variables(cache, list(sets or []))
    if target_sets and not run:
        raise RocstackError(f"--set {target_sets[0]} overrides a target, which only buildx applies",
                            "add --run, or pass it to `docker buildx bake --set` yourself")
    index = host_index_settings()
    needs_wheelhouse = any(c.selection.stack.torch.wheelhouse for c in cells)
    houses = tuple(wheelhouses) if wheelhouses else (tuple(index.find_links) if needs_wheelhouse else ())
    wheels = wheelhouse_files(list(houses))
    for cell in cells:
        check_torch_wheel(cell.selection, wheels, list(houses))
    out_path = check_writable(Path(out), "--out") if out else None
    chosen = None
    if run:
        chosen = resolve_builder(builder)
        for cell in cells:
            check_builder_sees_base(chosen, cell.selection)
    elif builder:
        raise RocstackError("--builder needs --run", "add --run to build on that builder")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    log_path = check_writable(logs_dir() / f"bake-{stamp}-{os.getpid()}.log", "the bake log")
    return BakeOptions(tuple(cells), variables, target_sets, index, wheels, houses, out_path, run, chosen, log_path)


def bake_dir() -> Path:
    """Where rocstack keeps a bake's own files (the pip settings handed to buildx as secrets)."""
    return rocstack_home() / "bake"
