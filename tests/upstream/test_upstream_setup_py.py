"""The rendered arch flags, fed to upstream's own setup.py code (from the released sdists).

flash-attention: the CK branch's ``GPU_ARCHS`` parsing and ``validate_and_update_archs``
are taken from the real setup.py and run on what rocstack renders, for every arch
selection the catalog accepts, and for every arch it refuses. (The recipe builds the
ROCm fork at a pinned commit, whose setup.py has the same function; the PyPI sdist
carries it too and is reachable from CI.) xFormers: the rendered HIP_ARCHITECTURES is
split the way its setup.py splits it, and the lines this recipe relies on are checked to
still be there, so an upstream bump that renames a switch fails here, not in a 6-hour build.
"""

from __future__ import annotations

import ast
import itertools
import tarfile

import pytest

from pypi_cache import pypi_download
from rendered import CATALOG, render, stage_env
from rocstack.arches import all_arches, parse_arch_list
from rocstack.errors import ArchError
from rocstack.recipes.catalog import select

pytestmark = pytest.mark.slow  # reads the real sdists (cached PyPI downloads)


def sdist_setup_py(requirement: str, pattern: str) -> str:
    sdist = pypi_download(requirement, pattern, binary=False)
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/setup.py"))
        return archive.extractfile(member).read().decode()


def upstream_function(source: str, name: str):
    """The named top-level function of ``source``, compiled alone (setup.py itself needs torch+CUDA to run)."""
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), f"<upstream {name}>", "exec"), namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def flash_attn_setup() -> str:
    version = CATALOG.component("flash-attention-triton").source.version
    return sdist_setup_py(f"flash-attn=={version}", f"flash_attn-{version}.tar.gz")


def test_every_accepted_ck_selection_passes_upstreams_arch_assertion(flash_attn_setup):
    validate = upstream_function(flash_attn_setup, "validate_and_update_archs")
    assert 'os.getenv("GPU_ARCHS", "native").split(";")' in flash_attn_setup
    recipe = CATALOG.component("flash-attention-ck")
    for size in (1, 2, 3):
        for combo in itertools.combinations(recipe.arches, size):
            stack = "rocm70-ubuntu2404"
            value = stage_env(render(stack, ",".join(combo)), "flash-attention-ck")["GPU_ARCHS"]
            validate(value.split(";"))  # raises AssertionError exactly as setup.py would


def test_every_arch_rocstack_refuses_for_ck_is_one_upstream_rejects(flash_attn_setup):
    validate = upstream_function(flash_attn_setup, "validate_and_update_archs")
    recipe = CATALOG.component("flash-attention-ck")
    refused = [a for a in all_arches() if a not in recipe.arches]
    assert refused
    for arch in refused:
        with pytest.raises(ArchError, match=f"flash-attention-ck cannot target {arch}"):
            select(CATALOG, "rocm70-ubuntu2404", arch)
        with pytest.raises(AssertionError, match="not supported by Flash-Attention"):
            validate([arch])


def test_xformers_setup_splits_the_rendered_arch_list_into_the_targets():
    version = CATALOG.component("xformers").version
    source = sdist_setup_py(f"xformers=={version}", f"xformers-{version}.tar.gz")
    for line in ('os.getenv("HIP_ARCHITECTURES", "native").split()',
                 'os.getenv("XFORMERS_CK_FLASH_ATTN", "1") == "1"',
                 'torch.cuda.is_available() or os.getenv("HIP_ARCHITECTURES", "") != ""',
                 "no_python_abi_suffix=True"):
        assert line in source, f"xFormers {version} setup.py changed: {line!r} is gone"
    env = stage_env(render("rocm70-ubuntu2404", "gfx942:sramecc+:xnack-,gfx950"), "xformers")
    offload = [f"--offload-arch={a}" for a in env["HIP_ARCHITECTURES"].split()]
    assert offload == ["--offload-arch=gfx942", "--offload-arch=gfx950"]
    assert [t.processor for t in parse_arch_list("gfx942,gfx950")] == env["HIP_ARCHITECTURES"].split()
