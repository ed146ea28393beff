"""Rendering: golden Dockerfiles, determinism, template overrides, builtin frontend only.

Regenerate the goldens after an intended template change with
``ROCSTACK_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

import os
from pathlib import Path

import pytest

from rocstack.errors import RecipeError
from rocstack.recipes.catalog import Catalog, select
from rocstack.render import BuildResources, render_dockerfile

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
RESOURCES = BuildResources(cpus=16, memory_gb=64)

# Every shipped stack at its default arches, plus the multi-arch default-stack build CI makes.
CASES = [(s.name, ",".join(map(str, s.default_arches))) for s in Catalog(REPO).stacks()] + [("local", "gfx90a,gfx942")]


def render(stack, arch, **kw):
    return render_dockerfile(select(Catalog(REPO), stack, arch), RESOURCES, **kw)


@pytest.mark.parametrize("stack,arch", CASES)
def test_golden_dockerfiles(stack, arch):
    """Every stack's rendered Dockerfile is byte-identical to its reviewed golden."""
    text = render(stack, arch)
    golden = GOLDEN / f"{stack}__{arch.replace(',', '_')}.Dockerfile"
    if os.environ.get("ROCSTACK_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"missing golden {golden.name}: run with ROCSTACK_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("stack,arch", CASES)
def test_rendering_is_deterministic_and_uses_the_builtin_frontend(stack, arch):
    first, second = render(stack, arch), render(stack, arch)
    assert first == second
    assert "# syntax=" not in first
    stages = [line.split(" AS ")[1] for line in first.splitlines() if line.startswith("FROM ")]
    assert stages[0] == "base" and stages[1] == "python-env" and stages[-1] == "runtime"
    assert all(s.startswith("build-") for s in stages[2:-1])


def test_arch_flags_are_spelled_per_upstream(tmp_path):
    from rocstack.recipes.models import ArchFlag
    from rocstack.arches import parse_arch_list

    targets = parse_arch_list("gfx90a,gfx942:sramecc+:xnack-")
    assert ArchFlag(name="GPU_ARCHS", separator=";").render(targets) == "gfx90a;gfx942"
    assert ArchFlag(name="HIP_ARCHITECTURES", separator=" ").render(targets) == "gfx90a gfx942"
    assert ArchFlag(name="AMDGPU_TARGETS", kind="cmake", separator=";", features=True).render(targets) == "-DAMDGPU_TARGETS=gfx90a;gfx942:sramecc+:xnack-"


def test_max_jobs_is_bounded_by_memory_per_job():
    catalog = Catalog(REPO)
    recipe = catalog.component("rocstack-kernels").model_copy(update={})
    heavy = recipe.model_copy(update={"build": recipe.build.model_copy(update={"memory_per_job_gb": 9.0})})
    assert BuildResources(cpus=32, memory_gb=64).max_jobs(heavy) == 7
    assert BuildResources(cpus=2, memory_gb=64).max_jobs(heavy) == 2
    assert BuildResources(cpus=32, memory_gb=4).max_jobs(heavy) == 1


def test_labels_name_stack_arches_and_components():
    text = render("local", "gfx90a,gfx942")
    assert 'io.rocstack.stack="local"' in text
    assert 'io.rocstack.arches="gfx90a,gfx942"' in text
    assert "io.rocstack.components=" in text and "org.opencontainers.image.title=" in text


def test_user_template_extends_blocks(tmp_path):
    (tmp_path / "Dockerfile.j2").write_text(
        '{% extends "images/Dockerfile.j2" %}{% block header %}# site policy: internal mirror\n{% endblock %}'
    )
    # the user's directory is searched first; the stock template is reachable by its path under the project root
    text = render_dockerfile(select(Catalog(REPO), "local", "gfx942"), RESOURCES, template_dirs=[tmp_path, REPO])
    assert "# site policy: internal mirror" in text
    assert "FROM python-env AS runtime" in text


def test_template_errors_are_one_line(tmp_path):
    (tmp_path / "Dockerfile.j2").write_text("{{ no_such_value }}")
    with pytest.raises(RecipeError, match="no_such_value.*is undefined"):
        render_dockerfile(select(Catalog(REPO), "local", "gfx942"), RESOURCES, template_dirs=[tmp_path])
    (tmp_path / "Dockerfile.j2").write_text("# syntax=docker/dockerfile:1\nFROM x\n")
    with pytest.raises(RecipeError, match="renders a '# syntax=' line"):
        render_dockerfile(select(Catalog(REPO), "local", "gfx942"), RESOURCES, template_dirs=[tmp_path])
