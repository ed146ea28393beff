"""Render a stack selection into one multi-stage Dockerfile.

Templates are data (``images/*.j2``); this module only computes the values they
need. Rendering is deterministic: the same selection gives byte-identical output
on any machine (no timestamps, no host paths, no host sizes: MAX_JOBS is decided
inside the builder, see images/files/rocstack-jobs.sh; sorted mappings), so a
rendered Dockerfile can be hashed into an image tag and golden-tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jinja2

from rocstack import __version__
from rocstack.contracts import BUILD_MARKERS_PATH, BUILDER_MARKERS_DIR, LABEL_ARCHES, LABEL_COMPONENTS, LABEL_STACK, compact_json
from rocstack.errors import RecipeError
from rocstack.recipes.catalog import Selection
from rocstack.recipes.models import ComponentRecipe

TEMPLATE = "Dockerfile.j2"


def base_reference(selection: Selection) -> str:
    """The FROM of the base stage: a pinned registry image, or the locally built debootstrap base."""
    base = selection.stack.base
    if base.image:
        return f"{base.image}@{base.digest}" if base.digest else base.image
    from rocstack.recipes.basekey import debootstrap_tag  # local import: keeps render free of build deps

    return debootstrap_tag(selection.stack)


def _component_context(recipe: ComponentRecipe, selection: Selection) -> dict:
    # MAX_JOBS is not here: the builder decides it when the stage runs (rocstack-jobs), from
    # the machine that really builds, not the one that renders.
    env = {"ROCSTACK_ARCHES": selection.arch_list, "WHEEL_DIR": "/out/wheels"}
    cmake_args = []
    for flag in recipe.build.arch_flags:
        if flag.kind == "cmake":
            cmake_args.append(flag.render(selection.targets))
        else:
            env[flag.name] = flag.render(selection.targets)
    if cmake_args:
        env["ROCSTACK_CMAKE_ARGS"] = " ".join(cmake_args)
    toolchain = selection.stack.toolchain
    if recipe.build.toolchain_flags:
        # named per-toolchain flags (flash-attention's inlining flags hang Debian's clang-22): empty when
        # the stack's toolchain has no such set, so the recipe's build keeps its own defaults
        flags = (toolchain.flags.get(recipe.build.toolchain_flags) if toolchain else None) or []
        env["ROCSTACK_TOOLCHAIN_FLAGS"] = ";".join(flags)
    if recipe.build.offload_compress:
        env["ROCSTACK_OFFLOAD_COMPRESS"] = "ON"
    for key, value in recipe.build.env.items():
        env[key] = value
    for key, value in selection.stack.component_env.get(recipe.name, {}).items():
        env[key] = value
    system_packages = list(recipe.build.system_packages)
    if recipe.source.kind == "git" and "git" not in system_packages:
        system_packages.append("git")
    return {
        "recipe": recipe,
        "stage": f"build-{recipe.name}",
        "env": env,
        "inputs": [_input_command(i) for i in recipe.inputs],
        "ledger": _ledger_command(recipe),
        "system_packages": sorted(set(system_packages)),
        "jobs": {"memory_per_job_gb": _number(recipe.build.memory_per_job_gb), "max_jobs": recipe.build.max_jobs or 0},
    }


def _input_command(item) -> str:
    return (f"python -m rocstack.imaging.inputs pypi {item.package} {item.version} {item.dist} {item.sha256} "
            f"/inputs/{item.package}")


def _ledger_command(recipe: ComponentRecipe) -> str | None:
    """The effective-arch ledger of a ROCm component's outputs (rocstack.imaging.ledger), or None."""
    if recipe.build.toolchain != "rocm":
        return None
    outputs = sorted(recipe.artifacts.files) + (["/out/wheels"] if recipe.artifacts.wheels else [])
    return (f"python -m rocstack.imaging.ledger --component {recipe.name} --targets \"$ROCSTACK_ARCHES\" "
            f"--marker {BUILDER_MARKERS_DIR}/{recipe.name}.json " + " ".join(outputs))


def _number(value: float) -> str:
    """9.0 -> "9", 2.5 -> "2.5": the rendered text stays the same for equal values."""
    return f"{value:g}"


def source_refs(selection: Selection) -> dict[str, str]:
    """Component name -> pinned source ref (the components label, and the build manifest's refs)."""
    return {r.name: _source_ref(r) for r in selection.components}


def image_labels(selection: Selection) -> dict[str, str]:
    """The labels the runtime stage renders (a bake target lists them too)."""
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


def render_dockerfile(selection: Selection, template_dirs: list[Path] | None = None) -> str:
    """Render the selection. ``template_dirs`` come before images/ so a user can extend blocks;
    the project root comes last, so a site template can name the stock one as
    ``images/Dockerfile.j2`` (README's example) as well as ``Dockerfile.j2``."""
    search_path = [*(template_dirs or []), selection.catalog.images_dir, selection.catalog.root]
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
            components=[_component_context(r, selection) for r in selection.components],
            labels=image_labels(selection),
            versions=_versions(selection),
            markers_dir=BUILD_MARKERS_PATH,
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
