"""The optional recipe fields the upstream components use: runtime ENV, check ENV, GPU-only
pytest selections and a component benchmark command."""

from __future__ import annotations

from pathlib import Path

import pytest

from rocstack.errors import RecipeError
from rocstack.recipes.catalog import Catalog
from rocstack.recipes.loader import load_component

REPO = Path(__file__).resolve().parents[2]

RECIPE = """\
name: demo
version: "1.0"
source: {kind: pypi, package: demo, version: "1.0"}
arches: [gfx942]
build: {toolchain: none, commands: ["true"]}
artifacts: {env: {DEMO_BACKEND: triton}, distribution: demo_dist}
validation:
  env: {DEMO_TEST: "1"}
  pytest_gpu: ["tests/test_demo.py -k forward"]
  benchmark: "{python} {root}/bench.py --json {json}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_optional_fields_load(tmp_path):
    recipe = load_component(write(tmp_path, RECIPE))
    assert recipe.artifacts.env == {"DEMO_BACKEND": "triton"}
    assert recipe.artifacts.distribution == "demo_dist"
    assert recipe.validation.env == {"DEMO_TEST": "1"}
    assert recipe.validation.pytest_gpu == ["tests/test_demo.py -k forward"]
    assert recipe.validation.benchmark.format(python="py", root="/r", json="o.json") == "py /r/bench.py --json o.json"


@pytest.mark.parametrize("command,expected", [
    ("{python} bench.py --out out.json", r"demo.yaml:10: field 'validation.benchmark'.*must write its metrics to \{json\}"),
    ("{python} bench.py --json {output}", r"demo.yaml:10: field 'validation.benchmark'.*unknown field \('output'\)"),
])
def test_benchmark_command_must_write_the_json_the_suite_reads(tmp_path, command, expected):
    text = RECIPE.replace('"{python} {root}/bench.py --json {json}"', f'"{command}"')
    with pytest.raises(RecipeError, match=expected):
        load_component(write(tmp_path, text))


def test_shipped_upstream_recipes_use_the_fields_consistently():
    catalog = Catalog(REPO)
    for name in ("flash-attention-ck", "flash-attention-triton", "xformers", "fbgemm-gpu-rocm", "fbgemm-gpu-rocm6"):
        recipe = catalog.component(name)
        assert recipe.validation.pytest_gpu, f"{name}: upstream's GPU test selection is its correctness check"
        for selection in recipe.validation.pytest_gpu:
            # the files the selections name are copied into the image by the recipe
            path = next(word for word in selection.split() if word.startswith("/opt/rocstack/upstream-tests/"))
            assert any(path.startswith(dest) for dest in recipe.artifacts.files.values()), (name, path)
    for name in ("flash-attention-ck", "flash-attention-triton"):
        recipe = catalog.component(name)
        assert recipe.validation.benchmark and (REPO / "recipes" / "benchmarks" / "flash_attention.py").is_file()
        assert set(recipe.validation.perf) <= set(recipe.arches)
