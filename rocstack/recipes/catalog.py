"""The recipes/ and images/ trees of a project, and what a stack selection resolves to."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from packaging.version import Version

from rocstack.arches import TargetID, get_arch, parse_arch_list
from rocstack.contracts import DEFAULT_STACK, PROJECT_PATH
from rocstack.errors import ArchError, RecipeError
from rocstack.recipes.loader import load_component, load_stack
from rocstack.recipes.models import ComponentRecipe, Stack

def project_root() -> Path:
    """Where recipes/ and images/ live: $ROCSTACK_ROOT, else the checkout (or image copy) holding this package."""
    env = os.environ.get("ROCSTACK_ROOT")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2], Path(PROJECT_PATH), Path.cwd()]
    for candidate in candidates:
        if (candidate / "recipes").is_dir() and (candidate / "images").is_dir():
            return candidate
    raise RecipeError(
        "cannot find the rocstack project (recipes/ and images/)",
        "run from a rocstack checkout or set ROCSTACK_ROOT to one",
    )


def _unknown(kind: str, name: str, known: list[str], hint_cmd: str) -> RecipeError:
    close = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return RecipeError(f"unknown {kind} '{name}'", f"{guess}known: {', '.join(known) or 'none'} (see `{hint_cmd}`)")


@dataclass
class Catalog:
    root: Path

    @classmethod
    def default(cls) -> "Catalog":
        return cls(project_root())

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    def _files(self, sub: str) -> dict[str, Path]:
        folder = self.root / "recipes" / sub
        return {p.stem: p for p in sorted(folder.glob("*.yaml"))}

    @cached_property
    def stack_files(self) -> dict[str, Path]:
        return self._files("stacks")

    @cached_property
    def component_files(self) -> dict[str, Path]:
        return self._files("components")

    def stack(self, name: str) -> Stack:
        if name not in self.stack_files:
            raise _unknown("stack", name, list(self.stack_files), "rocstack stacks")
        return load_stack(self.stack_files[name])

    def component(self, name: str) -> ComponentRecipe:
        if name not in self.component_files:
            raise _unknown("component", name, list(self.component_files), "rocstack recipes")
        return load_component(self.component_files[name])

    def stacks(self) -> list[Stack]:
        return [load_stack(p) for p in self.stack_files.values()]

    def components(self) -> list[ComponentRecipe]:
        return [load_component(p) for p in self.component_files.values()]


@dataclass(frozen=True)
class Selection:
    """A stack, its component recipes and the arch targets: resolved once, passed down."""

    catalog: Catalog
    stack: Stack
    components: tuple[ComponentRecipe, ...]
    targets: tuple[TargetID, ...]

    @property
    def arch_list(self) -> str:
        return ",".join(str(t) for t in self.targets)


def toolchain_refusal(stack: Stack, processor: str) -> str | None:
    """Why the stack's own device compiler cannot target ``processor`` (None: it can, or the stack names no toolchain)."""
    toolchain = stack.toolchain
    if toolchain is None:
        return None
    if processor in toolchain.refused:
        return f"the toolchain of stack {stack.name} ({toolchain.name}) cannot target {processor}: {toolchain.refused[processor]}"
    if processor not in toolchain.offload_arches:
        return (f"the toolchain of stack {stack.name} ({toolchain.name}) cannot target {processor}: "
                f"its hipcc targets {', '.join(toolchain.offload_arches)}")
    return None


def refusal_reason(stack: Stack, recipe: ComponentRecipe, target: TargetID) -> str | None:
    """Why ``recipe`` cannot be built for ``target`` on ``stack``, or None when it can."""
    if recipe.build.toolchain == "rocm" and (reason := toolchain_refusal(stack, target.processor)):
        return reason
    if target.processor not in recipe.arches:
        note = f" ({recipe.arch_note})" if recipe.arch_note else ""
        return f"{recipe.name} cannot target {target.processor}: it supports {', '.join(recipe.arches)}{note}"
    if recipe.build.toolchain == "rocm":
        if stack.rocm is None:
            return f"{recipe.name} needs a ROCm toolchain but stack {stack.name} has none"
        needed = get_arch(target.processor).min_rocm
        if needed is None:
            return f"rocstack does not know which ROCm first targets {target.processor}, so stack {stack.name} cannot be checked for it"
        if Version(stack.rocm) < Version(needed):
            return f"ROCm {stack.rocm} (stack {stack.name}) cannot target {target.processor}: it needs ROCm >= {needed}"
    return None


def _refuse_toolchain_arches(stack: Stack, arch: str) -> None:
    """An arch the stack's toolchain refuses (gfx940 on LLVM 22) is refused with the compiler's reason,
    even where rocstack's arch registry does not know the name (the registry would only say 'unknown')."""
    if stack.toolchain is None:
        return
    names = [part.strip().split(":")[0] for part in arch.split(",") if part.strip()]
    reasons = [toolchain_refusal(stack, name) for name in names if name in stack.toolchain.refused]
    if reasons:
        raise ArchError("; ".join(reasons), f"choose arches the toolchain targets: {', '.join(stack.toolchain.offload_arches)}")


def select(catalog: Catalog, stack_name: str | None, arch: str | list[TargetID] | None) -> Selection:
    """Resolve a stack and an --arch value (text, or target IDs parsed already), refusing impossible
    selections before any build starts."""
    stack = catalog.stack(stack_name or DEFAULT_STACK)
    if not arch:
        targets = list(stack.default_arches)
    elif isinstance(arch, str):
        _refuse_toolchain_arches(stack, arch)
        targets = parse_arch_list(arch)
    else:
        targets = list(arch)
    components = tuple(catalog.component(name) for name in stack.components)
    # dict.fromkeys: a stack-wide reason (ROCm too old) is said once, not once per component
    problems = list(dict.fromkeys(
        reason
        for recipe in components
        for target in targets
        if (reason := refusal_reason(stack, recipe, target))
    ))
    if problems:
        raise ArchError(
            "; ".join(problems),
            "choose arches every component supports, or a stack/recipe variant that supports them",
        )
    return Selection(catalog, stack, components, tuple(targets))
