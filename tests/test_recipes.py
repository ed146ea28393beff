import shutil
from pathlib import Path

import pytest

from rocstack.errors import ArchError, RecipeError
from rocstack.recipes.catalog import Catalog, project_root, select
from rocstack.recipes.loader import load_component, load_stack

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
name: demo
version: "1.0"
source: {kind: git, url: https://example.invalid/demo.git, ref: 0123456789abcdef0123456789abcdef01234567}
arches: [gfx90a, gfx942]
build:
  toolchain: rocm
  arch_flags: [{name: GPU_ARCHS, separator: ";"}]
  memory_per_job_gb: 9
  commands: ["python setup.py bdist_wheel -d $WHEEL_DIR"]
"""


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_shipped_recipe_and_stack_loads():
    catalog = Catalog(REPO)
    assert "local" in catalog.stack_files
    for stack in catalog.stacks():
        for component in stack.components:
            catalog.component(component)


def test_a_good_recipe_loads(tmp_path):
    recipe = load_component(write(tmp_path, "demo", GOOD))
    assert recipe.build.arch_flags[0].name == "GPU_ARCHS"


@pytest.mark.parametrize("edit,expected", [
    (lambda t: t.replace("memory_per_job_gb: 9", "memory_per_job_gb: lots"), r"demo.yaml:8: field 'build.memory_per_job_gb'"),
    (lambda t: t.replace("  toolchain: rocm", "  toolchain: rocm\n  colour: blue"), r"demo.yaml:7: field 'build.colour': unknown field"),
    (lambda t: t.replace("[gfx90a, gfx942]", "[gfx90a, gfx9422]"), r"demo.yaml:4: field 'arches'.*did you mean gfx942"),
    (lambda t: t.replace("ref: 0123456789abcdef0123456789abcdef01234567", "ref: main"), r"demo.yaml:3: field 'source.ref'.*not pinned"),
    (lambda t: t.replace('  commands: ["python setup.py bdist_wheel -d $WHEEL_DIR"]\n', ""), r"demo.yaml:5: field 'build.commands': Field required"),
    (lambda t: t.replace("gfx942]", "gfx942"), r"demo.yaml:\d+: invalid YAML"),
])
def test_bad_recipes_name_file_line_and_field(tmp_path, edit, expected):
    with pytest.raises(RecipeError, match=expected) as info:
        load_component(write(tmp_path, "demo", edit(GOOD)))
    assert "\n" not in info.value.one_line()


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="file not found"):
        load_component(tmp_path / "nope.yaml")


def test_recipe_name_must_match_file(tmp_path):
    with pytest.raises(RecipeError, match="rename the file to demo.yaml"):
        load_component(write(tmp_path, "other", GOOD))


def test_stack_needs_a_torch_source(tmp_path):
    text = (REPO / "recipes/stacks/local.yaml").read_text().replace("wheelhouse: true", "wheelhouse: false")
    with pytest.raises(RecipeError, match="CPU-only torch slips in"):
        load_stack(write(tmp_path, "local", text))


def make_catalog(tmp_path, recipe_text, rocm="6.4"):
    root = tmp_path / "proj"
    shutil.copytree(REPO / "images", root / "images")
    (root / "recipes/components").mkdir(parents=True)
    (root / "recipes/stacks").mkdir(parents=True)
    (root / "recipes/components/demo.yaml").write_text(recipe_text)
    (root / "recipes/stacks/prod.yaml").write_text(f"""\
name: prod
base: {{image: "rocm/dev-ubuntu-22.04:{rocm}"}}
os: {{name: ubuntu, version: "22.04"}}
rocm: "{rocm}"
python: "3.10"
torch: {{version: "2.9.1", variant: rocm, index_url: "https://download.pytorch.org/whl/rocm{rocm}"}}
components: [demo]
""")
    return Catalog(root)


def test_arch_a_component_cannot_target_is_refused_with_the_reason(tmp_path):
    catalog = make_catalog(tmp_path, GOOD.replace("arches: [gfx90a, gfx942]", "arches: [gfx90a, gfx942, gfx950]\narch_note: CK supports CDNA only"))
    with pytest.raises(ArchError, match=r"demo cannot target gfx1100: it supports gfx90a, gfx942, gfx950 \(CK supports CDNA only\)"):
        select(catalog, "prod", "gfx942,gfx1100")


def test_toolchain_older_than_the_arch_is_refused(tmp_path):
    catalog = make_catalog(tmp_path, GOOD.replace("arches: [gfx90a, gfx942]", "arches: [gfx90a, gfx942, gfx950]"))
    with pytest.raises(ArchError, match=r"ROCm 6.4 \(stack prod\) cannot target gfx950: it needs ROCm >= 7.0"):
        select(catalog, "prod", "gfx950")
    assert [str(t) for t in select(catalog, "prod", "gfx90a,gfx942").targets] == ["gfx90a", "gfx942"]


def test_unknown_stack_suggests(tmp_path):
    with pytest.raises(RecipeError, match="unknown stack 'lokal'.*did you mean local"):
        select(Catalog(REPO), "lokal", None)


def test_project_root_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ROCSTACK_ROOT", str(REPO))
    assert project_root() == REPO
