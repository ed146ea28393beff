"""Render a stack selection into one multi-stage Dockerfile.

Templates are data (``images/*.j2``); this module only computes the values they
need. Rendering is deterministic: the same selection and build resources give
byte-identical output (no timestamps, no host paths, sorted mappings), so a
rendered Dockerfile can be hashed into an image tag and golden-tested.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import jinja2

from rocstack import __version__
from rocstack.contracts import LABEL_ARCHES, LABEL_COMPONENTS, LABEL_STACK, compact_json
from rocstack.errors import RecipeError
from rocstack.recipes.catalog import Selection
from rocstack.recipes.models import ComponentRecipe

TEMPLATE = "Dockerfile.j2"


@dataclass(frozen=True)
class BuildResources:
    """The build host's capacity: it bounds parallel compile jobs (MAX_JOBS)."""

    cpus: int
    memory_gb: float

    @classmethod
    def detect(cls) -> "BuildResources":
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        memory_gb = 4.0
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        memory_gb = int(line.split()[1]) / (1024 * 1024)
                        break
        except OSError:
            pass
        return cls(cpus=cpus, memory_gb=round(memory_gb, 1))

    def max_jobs(self, recipe: ComponentRecipe) -> int:
        """Jobs that fit in memory: CK flash-attention needs ~9 GB each, so cores alone OOM the host."""
        by_memory = int(self.memory_gb // recipe.build.memory_per_job_gb)
        jobs = min(self.cpus, by_memory)
        if recipe.build.max_jobs:
            jobs = min(jobs, recipe.build.max_jobs)
        return max(1, jobs)


def base_reference(selection: Selection) -> str:
    """The FROM of the base stage: a pinned registry image, or the locally built debootstrap base."""
    base = selection.stack.base
    if base.image:
        return f"{base.image}@{base.digest}" if base.digest else base.image
    from rocstack.recipes.basekey import debootstrap_tag  # local import: keeps render free of build deps

    return debootstrap_tag(selection.stack)


def _component_context(recipe: ComponentRecipe, selection: Selection, resources: BuildResources) -> dict:
    env = {"ROCSTACK_ARCHES": selection.arch_list, "MAX_JOBS": str(resources.max_jobs(recipe)), "WHEEL_DIR": "/out/wheels"}
    cmake_args = []
    for flag in recipe.build.arch_flags:
        if flag.kind == "cmake":
            cmake_args.append(flag.render(selection.targets))
        else:
            env[flag.name] = flag.render(selection.targets)
    if cmake_args:
        env["ROCSTACK_CMAKE_ARGS"] = " ".join(cmake_args)
    for key, value in recipe.build.env.items():
        env[key] = value
    system_packages = list(recipe.build.system_packages)
    if recipe.source.kind == "git" and "git" not in system_packages:
        system_packages.append("git")
    return {
        "recipe": recipe,
        "stage": f"build-{recipe.name}",
        "env": env,
        "system_packages": sorted(set(system_packages)),
    }


def source_refs(selection: Selection) -> dict[str, str]:
    """Component name -> pinned source ref (the components label, and the build manifest's refs)."""
    return {r.name: _source_ref(r) for r in selection.components}


def _labels(selection: Selection) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": f"rocstack {selection.stack.name}",
        "org.opencontainers.image.description": selection.stack.description or f"rocstack stack {selection.stack.name}",
        "org.opencontainers.image.vendor": "rocstack",
        "org.opencontainers.image.version": __version__,
        LABEL_STACK: selection.stack.name,
        LABEL_ARCHES: selection.arch_list,
        LABEL_COMPONENTS: compact_json(source_refs(selection)),
    }


def _versions(selection: Selection) -> list[str]:
    stack = selection.stack
    lines = [f"rocstack {__version__}", f"stack {stack.name}", f"arches {selection.arch_list}",
             f"torch {stack.torch.version} ({stack.torch.variant})"]
    if stack.triton:
        lines.append(f"triton {stack.triton}")
    lines += [f"{r.name} {r.version} {_source_ref(r)}" for r in selection.components]
    return lines


def _source_ref(recipe: ComponentRecipe) -> str:
    source = recipe.source
    if source.kind == "git":
        return f"{source.url}@{source.ref}"
    if source.kind == "pypi":
        return f"pypi:{source.package}=={source.version}"
    return f"local:{source.path}@{recipe.version}"


def _environment(search_path: list[Path]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shquote"] = _shquote
    env.filters["dquote"] = lambda s: json.dumps(str(s))
    env.filters["kv_pairs"] = _kv_pairs
    return env


def _kv_pairs(mapping) -> list[str]:
    """``KEY="value"`` items for ENV/LABEL lines (a mapping keeps its order; dictsort gives pairs)."""
    items = mapping.items() if hasattr(mapping, "items") else mapping
    return [f"{key}={json.dumps(str(value))}" for key, value in items]


def _shquote(value: str) -> str:
    import shlex

    return shlex.quote(str(value))


def render_dockerfile(
    selection: Selection,
    resources: BuildResources,
    template_dirs: list[Path] | None = None,
) -> str:
    """Render the selection. ``template_dirs`` come before images/ so a user can extend blocks."""
    search_path = [*(template_dirs or []), selection.catalog.images_dir]
    env = _environment(search_path)
    name = selection.stack.template or TEMPLATE
    try:
        template = env.get_template(name)
        text = template.render(
            rocstack_version=__version__,
            stack=selection.stack,
            arch_list=selection.arch_list,
            targets=[str(t) for t in selection.targets],
            base_ref=base_reference(selection),
            components=[_component_context(r, selection, resources) for r in selection.components],
            labels=_labels(selection),
            versions=_versions(selection),
        )
    except jinja2.TemplateNotFound as exc:
        raise RecipeError(f"template '{exc.name}' not found in {', '.join(map(str, search_path))}", "check the stack's 'template' field") from None
    except jinja2.UndefinedError as exc:
        raise RecipeError(f"template {name}: {exc.message}", "the template uses a value rocstack does not provide; see images/Dockerfile.j2 for the variables") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RecipeError(f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}", "fix the Jinja syntax") from None
    if any(line.lstrip().startswith("# syntax=") for line in text.splitlines()):
        raise RecipeError(f"template {name} renders a '# syntax=' line", "remove it: BuildKit would pull a frontend image, which fails without a registry")
    return text
