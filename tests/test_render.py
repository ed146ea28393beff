"""Rendering: golden Dockerfiles, determinism, template overrides, builtin frontend only.

Regenerate the goldens after an intended template change with
``ROCSTACK_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

import os
from pathlib import Path

import pytest

from rocstack.errors import RecipeError
from rocstack.recipes.catalog import Catalog, select
from rocstack.render import render_dockerfile

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"

# Every shipped stack at its default arches, plus the multi-arch default-stack build CI makes.
CASES = [(s.name, ",".join(map(str, s.default_arches))) for s in Catalog(REPO).stacks()] + [("local", "gfx90a,gfx942")]


def render(stack, arch, **kw):
    return render_dockerfile(select(Catalog(REPO), stack, arch), **kw)


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


def test_max_jobs_is_decided_in_the_builder_not_rendered():
    """The rendered text holds no host size: the builder's rocstack-jobs decides MAX_JOBS."""
    text = render("rocm70-ubuntu2404", "gfx942,gfx950")
    assert 'MAX_JOBS="$(rocstack-jobs flash-attention-ck 9 0)"' in text
    assert "ENV MAX_JOBS" not in text and 'MAX_JOBS="2"' not in text
    assert "COPY rocstack/images/files/rocstack-jobs.sh /usr/local/bin/rocstack-jobs" in text


def test_runtime_consumes_a_marker_from_every_builder_stage():
    for stack, arch in CASES:
        text = render(stack, arch)
        builders = [line.split(" AS ")[1] for line in text.splitlines() if line.startswith("FROM ") and " AS build-" in line]
        runtime = text[text.index("AS runtime"):]
        for stage in builders:
            assert f"COPY --from={stage} /out/rocstack-build/ /opt/rocstack/build/" in runtime, (stack, stage)


def test_labels_name_stack_arches_and_components():
    text = render("local", "gfx90a,gfx942")
    assert 'io.rocstack.stack="local"' in text
    assert 'io.rocstack.arches="gfx90a,gfx942"' in text
    assert "io.rocstack.components=" in text and "org.opencontainers.image.title=" in text


def test_user_template_extends_blocks(tmp_path):
    (tmp_path / "Dockerfile.j2").write_text(
        '{% extends "images/Dockerfile.j2" %}{% block header %}# site policy: internal mirror\n{% endblock %}'
    )
    # the user's directory is searched first; the stock template is reachable as images/Dockerfile.j2
    text = render_dockerfile(select(Catalog(REPO), "local", "gfx942"), template_dirs=[tmp_path])
    assert "# site policy: internal mirror" in text
    assert "FROM python-env AS runtime" in text


def test_template_errors_are_one_line(tmp_path):
    (tmp_path / "Dockerfile.j2").write_text("{{ no_such_value }}")
    with pytest.raises(RecipeError, match="no_such_value.*is undefined"):
        render_dockerfile(select(Catalog(REPO), "local", "gfx942"), template_dirs=[tmp_path])
    (tmp_path / "Dockerfile.j2").write_text("# syntax=docker/dockerfile:1\nFROM x\n")
    with pytest.raises(RecipeError, match="renders a '# syntax=' line"):
        render_dockerfile(select(Catalog(REPO), "local", "gfx942"), template_dirs=[tmp_path])


@pytest.mark.parametrize("cpus,memory_gb,per_job,cap,expected", [
    (32, 64, 9, 0, 7),   # memory bounds a many-core builder (CK: ~9 GB per job)
    (2, 64, 9, 0, 2),    # cores bound a small one
    (32, 4, 9, 0, 1),    # never below one job
    (32, 64, 2.5, 8, 8), # the recipe's cap
])
def test_rocstack_jobs_decides_from_the_builders_cores_and_memory(tmp_path, cpus, memory_gb, per_job, cap, expected):
    """images/files/rocstack-jobs.sh, run by sh as a builder stage runs it, on a given nproc and MemAvailable."""
    import json
    import subprocess

    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: 99999999 kB\nMemAvailable: {int(memory_gb * 1024 * 1024)} kB\n")
    env = {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": str(cpus), "ROCSTACK_MEMINFO": str(meminfo),
           "ROCSTACK_MARKERS": str(tmp_path / "markers")}
    done = subprocess.run(["sh", str(REPO / "images/files/rocstack-jobs.sh"), "ck", str(per_job), str(cap)],
                          capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == str(expected)
    marker = json.loads((tmp_path / "markers" / "ck.json").read_text())
    assert marker == {"component": "ck", "max_jobs": expected, "nproc": cpus, "mem_available_kb": int(memory_gb * 1024 * 1024),
                      "memory_per_job_gb": per_job, "max_jobs_cap": cap}
