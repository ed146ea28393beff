"""The real `rocstack` command and `invoke` over tasks.py: output, exit codes, one-line errors."""

import json
import subprocess

import pytest

from cli_runner import REPO, run_cli


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_lists_tasks_of_this_issue():
    out = run_cli("--list").stdout
    for name in ("arches", "stacks", "recipes", "render"):
        assert name in out


def test_arches_json():
    result = run_cli("arches", "--json")
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["gfx942"]["mach"] == "0x4c" and rows["gfx942"]["fp8_dtypes"] == ["float8_e4m3fnuz", "float8_e5m2fnuz"]


def test_stacks_and_recipes_tables():
    assert "rocm70-ubuntu2404" in run_cli("stacks").stdout
    assert "rocstack-kernels" in run_cli("recipes").stdout


def test_render_to_stdout_matches_golden_structure():
    result = run_cli("render", "--arch", "gfx942")
    assert result.returncode == 0
    assert "FROM python-env AS build-rocstack-kernels" in result.stdout


@pytest.mark.parametrize("arch,fragments", [
    ("gfx9422", ["unknown arch 'gfx9422'", "did you mean gfx942", "gfx1201"]),
    ("mi300x", ["MI300X is gfx942", "--arch gfx942"]),
    ("gfx1030", ["rocstack-kernels cannot target gfx1030"]),
])
def test_render_refuses_bad_arches(arch, fragments):
    assert_one_line_error(run_cli("render", "--arch", arch), *fragments)


def test_render_unknown_stack():
    assert_one_line_error(run_cli("render", "--stack", "nope"), "unknown stack 'nope'")


def test_render_output_is_written_atomically(tmp_path):
    out = tmp_path / "sub" / "Dockerfile"
    result = run_cli("render", "--arch", "gfx90a,gfx942", "--output", str(out))
    assert result.returncode == 0
    assert 'io.rocstack.arches="gfx90a,gfx942"' in out.read_text()
    # a refused render leaves the previous file untouched and no temp files behind
    before = out.read_text()
    assert run_cli("render", "--arch", "gfx9422", "--output", str(out)).returncode == 2
    assert out.read_text() == before
    assert [p.name for p in out.parent.iterdir()] == ["Dockerfile"]


def test_malformed_recipe_is_one_line_with_file_and_line(tmp_path):
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(REPO / "images", root / "images")
    shutil.copytree(REPO / "recipes", root / "recipes")
    path = root / "recipes/components/rocstack-kernels.yaml"
    path.write_text(path.read_text().replace("memory_per_job_gb: 2", "memory_per_job_gb: two"))
    result = run_cli("render", env={"ROCSTACK_ROOT": str(root)})
    assert_one_line_error(result, "rocstack-kernels.yaml:", "build.memory_per_job_gb")


def test_invoke_runs_the_same_collection():
    result = subprocess.run(["invoke", "arches", "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert any(row["name"] == "gfx950" for row in json.loads(result.stdout))


def test_readme_site_template_example_works_through_the_cli(tmp_path):
    """README's site-template example, its shell lines run exactly as written (issue 21 item 4)."""
    readme = (REPO / "README.md").read_text()
    block = next(b for b in readme.split("```bash")[1:] if "mkdir site" in b).split("```")[0]
    lines = [line.strip() for line in block.strip().splitlines()]
    script = "\n".join(lines)
    assert '{% extends "images/Dockerfile.j2" %}' in script and "rocstack render" in script
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "# built with our mirror\nFROM " in done.stdout
    assert "FROM python-env AS runtime" in done.stdout
