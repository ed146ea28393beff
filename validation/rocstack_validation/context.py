"""What the suite validates: the build manifest, the stack and component recipes, the arches.

Inside an image these come from ``/opt/rocstack/manifest.json`` and the recipes the build
copied to ``/opt/rocstack/src/recipes`` (found through ``rocstack.recipes.project_root``).
With ``--local`` there is no manifest: the stack definition says what is expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from rocstack.arches import TargetID
from rocstack.contracts import BUILD_MANIFEST_SCHEMA, MANIFEST_PATH as _MANIFEST_PATH
from rocstack.errors import RocstackError

MANIFEST_PATH = Path(_MANIFEST_PATH)


class ContextError(Exception):
    """The suite cannot even start (no manifest, unreadable recipes): reported as exit 2."""


@dataclass
class Component:
    name: str
    version: str | None  # what the build manifest recorded; None without a manifest
    recipe: object | None  # rocstack.recipes.models.ComponentRecipe
    recipe_error: str | None = None

    @property
    def policy(self):
        if self.recipe is None:
            from rocstack.recipes.models import ValidationPolicy

            return ValidationPolicy()
        return self.recipe.validation


def component_env(component) -> dict[str, str]:
    """The environment a component's check subprocesses run with: the suite's, then the policy's ``env``
    (FBGEMM's tests take the ROCm path only with FBGEMM_TEST_WITH_ROCM=1)."""
    return {**os.environ, **component.policy.env}


@dataclass
class Context:
    mode: str  # "image" | "local"
    project_root: Path | None
    manifest: dict | None
    stack_name: str | None
    stack: object | None  # rocstack.recipes.models.Stack
    arches: list[TargetID]  # parsed once, here
    components: list[Component]
    sysroot: str = "/"
    notes: list[str] = field(default_factory=list)

    @property
    def arch_names(self) -> list[str]:
        return [str(t) for t in self.arches]

    @property
    def torch_variant(self) -> str | None:
        return self.stack.torch.variant if self.stack is not None else None

    @property
    def expected_torch_version(self) -> str | None:
        return self.stack.torch.version if self.stack is not None else None


def read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContextError(f"no build manifest at {path}: this image was not built by rocstack") from None
    except (OSError, ValueError) as exc:
        raise ContextError(f"build manifest {path} is unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != BUILD_MANIFEST_SCHEMA:
        raise ContextError(f"{path} is not a {BUILD_MANIFEST_SCHEMA} manifest (schema={data.get('schema') if isinstance(data, dict) else None!r})")
    for key in ("stack", "arches", "components"):
        if key not in data:
            raise ContextError(f"build manifest {path} lacks '{key}'")
    if not isinstance(data["components"], list) or not all(isinstance(c, dict) and "name" in c for c in data["components"]):
        raise ContextError(f"build manifest {path}: 'components' must be a list of {{name, version, ...}} entries")
    return data


def _catalog():
    from rocstack.recipes import Catalog

    try:
        return Catalog.default(), None
    except RocstackError as exc:
        return None, exc.one_line()


def _load_recipe(catalog, name: str):
    if catalog is None:
        return None, "no recipes found"
    try:
        return catalog.component(name), None
    except RocstackError as exc:
        return None, exc.one_line()


def image_context(manifest_path: Path = MANIFEST_PATH) -> Context:
    manifest = read_manifest(manifest_path)
    catalog, catalog_error = _catalog()
    notes = [f"recipes unavailable: {catalog_error}"] if catalog_error else []
    stack = None
    if catalog is not None:
        try:
            stack = catalog.stack(manifest["stack"])
        except RocstackError as exc:
            notes.append(f"stack definition unavailable: {exc.one_line()}")
    from rocstack.arches import parse_arch_list

    try:
        arches = parse_arch_list(manifest["arches"])
    except RocstackError as exc:
        raise ContextError(f"build manifest {manifest_path}: {exc.one_line()}") from None
    components = []
    for entry in manifest["components"]:
        recipe, error = _load_recipe(catalog, entry["name"])
        components.append(Component(entry["name"], entry.get("version"), recipe, error))
    return Context(
        mode="image",
        project_root=catalog.root if catalog else None,
        manifest=manifest,
        stack_name=manifest["stack"],
        stack=stack,
        arches=arches,
        components=components,
        notes=notes,
    )


def local_context(stack_name: str | None, arch: str | None) -> Context:
    """The current environment, judged against a stack selection from the project's recipes
    (resolved by ``select``, with its refusals: an arch a component cannot target is refused)."""
    from rocstack.recipes.catalog import select

    catalog, catalog_error = _catalog()
    if catalog is None:
        raise ContextError(f"--local needs the project's recipes: {catalog_error}")
    try:
        selection = select(catalog, stack_name, arch)
    except RocstackError as exc:
        raise ContextError(exc.one_line()) from None
    components = [Component(recipe.name, None, recipe) for recipe in selection.components]
    return Context(
        mode="local",
        project_root=catalog.root,
        manifest=None,
        stack_name=selection.stack.name,
        stack=selection.stack,
        arches=list(selection.targets),
        components=components,
        sysroot=os.environ.get("ROCSTACK_SYSROOT", "/"),
    )
