"""The debian-rocm stack (issue 18): schema, base input hash, toolchain refusals, rendering, the
effective-arch ledger's judgement, the toolchain layer's apt files, and that the production stacks
render the same component build steps (item 7). The real build is tests/imaging/test_debian_rocm_e2e.py."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from rocstack.arches import parse_arch_list
from rocstack.errors import ArchError
from rocstack.imaging.aptlayer import PREFERENCES, SOURCES, CONFIG, apt_files, available_versions, missing_versions
from rocstack.imaging.ledger import OutputCode, judge
from rocstack.recipes.basekey import debootstrap_inputs, debootstrap_tag
from rocstack.recipes.catalog import Catalog, Selection, select
from rocstack.recipes.models import AptLayer, AptPin, Stack, TorchSpec
from rocstack.render import render_dockerfile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalog():
    return Catalog(REPO)


@pytest.fixture(scope="module")
def stack(catalog):
    return catalog.stack("debian-rocm")


def _with(stack: Stack, **changes) -> Stack:
    data = stack.model_dump(mode="json")
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return Stack.model_validate(data)


# --- schema ----------------------------------------------------------------------


def test_the_stack_says_which_torch_and_that_it_is_a_cpu_build(stack):
    assert stack.torch.variant == "cpu" and stack.torch.apt.startswith("python3-torch=")
    assert stack.toolchain.refused["gfx940"] and "gfx942" in stack.toolchain.offload_arches
    assert all("=" in p for p in stack.base.debootstrap.apt.packages)


@pytest.mark.parametrize("packages,needle", [(["hipcc"], "not name=version"), (["hipcc>=7"], "not name=version")])
def test_toolchain_packages_must_be_pinned(stack, packages, needle):
    with pytest.raises(ValidationError, match=needle):
        _with(stack, base__debootstrap__apt__packages=packages)


def test_a_pin_takes_a_release_or_a_version_not_both():
    with pytest.raises(ValidationError, match="exactly one of"):
        AptPin(packages=["hipcc"], release="experimental", version="7.2.4", priority=990)
    with pytest.raises(ValidationError, match="exactly one of"):
        AptPin(packages=["hipcc"], priority=990)


def test_torch_takes_exactly_one_source():
    with pytest.raises(ValidationError, match="one source"):
        TorchSpec(version="2.14.1", variant="cpu", apt="python3-torch=2.14.1+dfsg-1", wheelhouse=True)
    with pytest.raises(ValidationError, match="name=version"):
        TorchSpec(version="2.14.1", variant="cpu", apt="python3-torch")


def test_toolchain_cannot_target_and_refuse_the_same_arch(stack):
    with pytest.raises(ValidationError, match="both targeted and refused"):
        _with(stack, toolchain__refused={"gfx942": "no"})


def test_component_env_names_only_the_stacks_components(stack):
    with pytest.raises(ValidationError, match="not among the stack's components"):
        _with(stack, component_env={"xformers": {"X": "1"}})


def test_a_rocm_debootstrap_stack_must_declare_its_toolchain(stack):
    with pytest.raises(ValidationError, match="toolchain"):
        _with(stack, toolchain=None)


# --- base input hash ---------------------------------------------------------------


def test_local_stack_base_tag_is_unchanged_by_the_toolchain_layer_schema(catalog):
    """Stacks without an apt block keep the tag their goldens render."""
    golden = (REPO / "tests/golden/local__gfx942.Dockerfile").read_text()
    assert f"FROM {debootstrap_tag(catalog.stack('local'))} AS base" in golden


@pytest.mark.parametrize("change", [
    {"base__debootstrap__apt__packages": ["hipcc=7.2.4+dfsg-1~exp2", "cmake=4.3.4-1"]},
    {"base__debootstrap__apt__sources": [{"suite": "sid", "components": ["main"]}]},
    {"base__debootstrap__apt__check_valid_until": True},
])
def test_base_hash_covers_every_package_pin_and_source(stack, change):
    assert debootstrap_tag(_with(stack, **change)) != debootstrap_tag(stack)


def test_base_hash_covers_pin_order_and_priority(stack):
    pins = stack.model_dump(mode="json")["base"]["debootstrap"]["apt"]["pins"]
    reordered = [pins[-1], *pins[:-1]]
    repriced = copy.deepcopy(pins)
    repriced[0]["priority"] = 2
    tags = {debootstrap_tag(_with(stack, base__debootstrap__apt__pins=p)) for p in (reordered, repriced)}
    assert debootstrap_tag(stack) not in tags and len(tags) == 2
    assert debootstrap_inputs(stack)["apt"]["packages"] == list(stack.base.debootstrap.apt.packages)


# --- the toolchain layer's files ------------------------------------------------------


def test_apt_files_pin_experimental_to_the_named_packages(stack):
    files = apt_files(stack.base.debootstrap.apt, "http://deb.debian.org/debian")
    assert files[SOURCES] == ("deb http://deb.debian.org/debian sid main\n"
                              "deb http://deb.debian.org/debian experimental main\n")
    assert 'Acquire::Check-Valid-Until "false";' in files[CONFIG]
    assert files[PREFERENCES].startswith("Package: *\nPin: release a=experimental\nPin-Priority: 1\n\n")
    assert "\nPackage: librccl1\nPin: version 7.2.4-1~exp3\nPin-Priority: 990\n" in files[PREFERENCES]


MADISON = """     hipcc | 7.2.4+dfsg-1~exp1 | http://deb.debian.org/debian experimental/main amd64 Packages
     hipcc | 7.0.2+dfsg-2 | http://deb.debian.org/debian sid/main amd64 Packages
"""


def test_a_missing_version_names_the_package_and_what_the_mirror_has():
    apt = AptLayer(sources=[{"suite": "sid"}], packages=["hipcc=7.2.5-1", "cmake=4.3.4-1"])
    madison = {"hipcc": MADISON, "cmake": "     cmake | 4.3.4-1 | http://x sid/main amd64 Packages\n"}
    assert available_versions(MADISON, "hipcc") == ["7.2.4+dfsg-1~exp1", "7.0.2+dfsg-2"]
    assert missing_versions(apt, madison.get) == ["hipcc=7.2.5-1 (the mirror has: 7.2.4+dfsg-1~exp1, 7.0.2+dfsg-2)"]
    assert missing_versions(AptLayer(sources=[{"suite": "sid"}], packages=["nope=1"]), lambda n: "") == \
        ["nope=1 (the mirror has: no such package)"]


# --- refusals before the engine -----------------------------------------------------------


def test_gfx940_is_refused_with_the_toolchains_reason(catalog):
    with pytest.raises(ArchError) as err:
        select(catalog, "debian-rocm", "gfx942,gfx940")
    assert "cannot target gfx940" in err.value.message and "unsupported HIP gpu architecture" in err.value.message


def test_an_arch_outside_the_toolchain_list_is_refused(catalog, stack):
    narrow = _with(stack, toolchain__offload_arches=["gfx90a", "gfx942"])
    selection = select(catalog, "debian-rocm", "gfx942")
    narrow_catalog = _catalog_with(catalog, narrow)
    with pytest.raises(ArchError, match=r"cannot target gfx950: its hipcc targets gfx90a, gfx942"):
        select(narrow_catalog, "debian-rocm", "gfx950")
    assert selection.arch_list == "gfx942"


def test_a_component_arch_is_still_refused_by_its_recipe(catalog):
    with pytest.raises(ArchError, match="ck-fmha cannot target gfx1100"):
        select(catalog, "debian-rocm", "gfx1100")


def _catalog_with(catalog: Catalog, stack: Stack) -> Catalog:
    class One(Catalog):
        def stack(self, name):
            return stack if name == stack.name else super().stack(name)
    return One(catalog.root)


# --- rendering ----------------------------------------------------------------------------------


def _stage(text: str, name: str) -> str:
    match = re.search(rf"^FROM python-env AS {re.escape(name)}\n(.*?)(?=^FROM |\Z)", text, re.S | re.M)
    assert match, name
    return match.group(1)


def test_render_passes_toolchain_flags_compression_inputs_and_the_ledger(catalog):
    text = render_dockerfile(select(catalog, "debian-rocm", "gfx942:xnack-,gfx950"))
    ck = _stage(text, "build-ck-fmha")
    assert 'ROCSTACK_CMAKE_ARGS="-DGPU_TARGETS=gfx942:xnack-;gfx950"' in ck
    assert 'ROCSTACK_TOOLCHAIN_FLAGS=""' in ck and 'ROCSTACK_OFFLOAD_COMPRESS="ON"' in ck
    assert "_nmask_" in re.search(r'FMHA_FILTER="([^"]+)"', ck).group(1)  # the stack's component_env wins
    assert "python -m rocstack.imaging.inputs pypi flash_attn 2.8.3.post2 sdist d0f9f0b0" in ck
    assert ck.rstrip().endswith("--marker /out/rocstack-build/ck-fmha.json /out/ck-fmha")
    assert "type=cache,target=/root/.cache/ccache" in ck and "set -x" in ck
    assert "RUN python3 -m venv --system-site-packages /opt/venv" in text
    assert "apt-get install -y --no-install-recommends python3-torch=2.14.1+dfsg-1" in text


def test_a_production_toolchain_keeps_the_recipes_own_flags(catalog):
    """A stack whose toolchain has no flag set for the recipe passes an empty set (ck_fmha's CMake default)."""
    rocm70 = catalog.stack("rocm70-ubuntu2404")
    prod = Stack.model_validate({**rocm70.model_dump(mode="json"), "components": ["rocstack-hip", "ck-fmha"]})
    text = render_dockerfile(Selection(catalog, prod, (catalog.component("rocstack-hip"), catalog.component("ck-fmha")),
                                       tuple(parse_arch_list("gfx942"))))
    assert 'ROCSTACK_TOOLCHAIN_FLAGS=""' in _stage(text, "build-ck-fmha")


def test_production_stacks_render_the_same_component_steps_except_base_and_torch(catalog):
    """Item 7: what debian-rocm proves carries over - every component stage of its components, rendered on
    each production stack (rocm/dev-ubuntu bases), is byte-identical; only the base and torch stages differ."""
    debian = catalog.stack("debian-rocm")
    components = tuple(catalog.component(n) for n in debian.components)
    targets = tuple(parse_arch_list("gfx942,gfx950"))
    ours = render_dockerfile(Selection(catalog, debian, components, targets))
    for name in ("rocm70-ubuntu2404", "rocm70-ubuntu2404-triton", "rocm64-ubuntu2204"):
        prod = catalog.stack(name)
        assert prod.base.image and prod.base.image.startswith("rocm/dev-ubuntu")
        twin = Stack.model_validate({**prod.model_dump(mode="json"), "components": list(debian.components),
                                     "component_env": debian.component_env, "rocm": "7.0"})
        theirs = render_dockerfile(Selection(catalog, twin, components, targets))
        for recipe in components:
            assert _stage(theirs, f"build-{recipe.name}") == _stage(ours, f"build-{recipe.name}"), (name, recipe.name)
        base = lambda t: re.search(r"^FROM (\S+) AS base", t, re.M).group(1)
        assert base(ours).startswith("rocstack-base/debian-rocm:") and base(theirs).startswith("rocm/dev-ubuntu")
        assert "python3-torch=" in ours and "python3-torch=" not in theirs and "--index-url" in theirs


# --- the effective-arch ledger (pure) -----------------------------------------------------------


def test_ledger_passes_when_every_bundle_carries_every_target():
    ledger = judge("rocstack-hip", parse_arch_list("gfx942,gfx950"),
                   [OutputCode("/out/lib/librocstack_hip.so.0", (("gfx942", "gfx950"),))])
    assert not ledger.problems and ledger.effective == ["gfx942", "gfx950"]
    assert ledger.outputs == [{"file": "/out/lib/librocstack_hip.so.0", "bundles": 1, "targets": ["gfx942", "gfx950"], "partial": []}]


def test_ledger_names_component_file_and_the_bundles_that_dropped_an_arch():
    ledger = judge("ck-fmha", parse_arch_list("gfx942,gfx950"),
                   [OutputCode("/out/ck-fmha/lib/librocstack_ck_fmha.so", (("gfx942", "gfx950"), ("gfx942",), ("gfx942",)))])
    assert ledger.problems == ["ck-fmha: requested gfx950 is missing from /out/ck-fmha/lib/librocstack_ck_fmha.so: "
                               "2 of its 3 bundle(s) (#1, #2) carry only gfx942"]
    assert ledger.effective == ["gfx942"] and ledger.outputs[0]["partial"] == ["gfx950"]


def test_ledger_fails_outputs_without_device_code_and_honours_target_features():
    none = judge("x", parse_arch_list("gfx942"), [])
    assert "carry no GPU code object at all" in none.problems[0]
    xnack = judge("x", parse_arch_list("gfx942:xnack+"), [OutputCode("/out/k.hsaco", (("gfx942:xnack-",),), True)])
    assert xnack.problems == ["x: requested gfx942:xnack+ is missing from /out/k.hsaco: the code object is for gfx942:xnack-"]
    anything = judge("x", parse_arch_list("gfx942:xnack+"), [OutputCode("/out/k.hsaco", (("gfx942",),), True)])
    assert not anything.problems


# --- FlashInfer+ROCm (item 6): rendered in the ROCm 7 production stack, with its JIT policy --------


def test_flashinfer_rocm_renders_its_arch_list_and_carries_the_jit_policy(catalog):
    selection = select(catalog, "rocm70-ubuntu2404-flashinfer", "gfx942,gfx950")
    stage = _stage(render_dockerfile(selection), "build-flashinfer-rocm")
    # always set: unset, FlashInfer+ROCm falls back to gfx942 in a docker build and drops gfx950
    assert 'FLASHINFER_ROCM_ARCH_LIST="gfx942,gfx950"' in stage
    assert "amd-flashinfer-jit-cache" in stage and stage.rstrip().endswith("/out/wheels")  # the ledger reads its wheels
    jit = catalog.component("flashinfer-rocm").validation.jit
    assert jit.compiler == "hipcc" and jit.arch_env == "FLASHINFER_ROCM_ARCH_LIST" and jit.aot
    with pytest.raises(ArchError, match="flashinfer-rocm cannot target gfx90a"):
        select(catalog, "rocm70-ubuntu2404-flashinfer", "gfx90a")
    assert select(catalog, "rocm70-ubuntu2404", "gfx90a").arch_list == "gfx90a"  # the main stack keeps MI210/MI250
