"""flash-attention's Triton AMD backend built for real from its PyPI sdist, with the recipe's
build environment, then validated with the recipe policies and AOT-compiled per arch.

This is the host-side proof of what the local-upstream stack's builder stage does (same
sdist, same switches, same pip command). The wheel is cached under the test cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rocstack.arches import get_arch, parse_arch_list
from rocstack.audit import load_policy, run_audit
from rocstack.recipes.loader import recipe_audit_policy
from rocstack.recipes.catalog import Catalog

from pypi_cache import cache_dir, pypi_download

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TRITON_RECIPE = REPO / "recipes" / "components" / "flash-attention-triton.yaml"
CK_RECIPE = REPO / "recipes" / "components" / "flash-attention-ck.yaml"
RECIPE = Catalog(REPO).component("flash-attention-triton")

pytestmark = pytest.mark.slow  # builds a wheel from a PyPI sdist and compiles Triton kernels


@pytest.fixture(scope="module")
def flash_attn_wheel(tmp_path_factory) -> Path:
    """The wheel the recipe's builder stage makes, built here the same way (cached)."""
    version = RECIPE.source.version
    cached = cache_dir() / "wheels" / f"flash_attn-{version}-py3-none-any.whl"
    if cached.exists():
        return cached
    sdist = pypi_download(f"flash-attn=={version}", f"flash_attn-{version}.tar.gz", binary=False)
    work = tmp_path_factory.mktemp("flash-attn-build")
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    source = work / f"flash_attn-{version}"
    env = {**os.environ, **RECIPE.build.env, "MAX_JOBS": "2"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), "."],
                          cwd=source, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    built = next((work / "dist").glob("flash_attn-*.whl"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    shutil.copyfile(built, partial)
    os.replace(partial, cached)
    return cached


@pytest.fixture(scope="module")
def site(flash_attn_wheel, tmp_path_factory) -> Path:
    """The wheel and einops (its one import dependency the stack lacks) installed into a folder."""
    target = tmp_path_factory.mktemp("flash-attn-site")
    einops = pypi_download("einops==0.8.1", "einops-0.8.1-*.whl")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-t", str(target),
                           str(flash_attn_wheel), str(einops)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1500:]
    return target


def run_python(site: Path, code: str, env: dict[str, str] | None = None, *args: str) -> subprocess.CompletedProcess:
    # TRITON_INTERPRET: the kernel suite sets it process-wide when it shares this pytest run,
    # and interpreted functions cannot be compiled ahead of time.
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLASH_ATTENTION_") and k != "TRITON_INTERPRET"}
    full.update(env or {})
    full["PYTHONPATH"] = os.pathsep.join([str(site), str(HERE)])
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], capture_output=True, text=True,
                          timeout=900, env=full, cwd=site)


def test_wheel_is_pure_python_with_the_triton_backend(flash_attn_wheel):
    assert flash_attn_wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(flash_attn_wheel).namelist()
    assert "flash_attn/flash_attn_triton_amd/fwd_prefill.py" in names
    assert not [n for n in names if n.endswith(".so")]  # no C++ extension was compiled


def test_audit_passes_the_triton_policy_and_the_ck_policy_refuses_the_same_wheel(flash_attn_wheel):
    targets = parse_arch_list("gfx942,gfx1100")
    ok = run_audit([str(flash_attn_wheel)], targets=targets, policy=load_policy(str(TRITON_RECIPE), read_recipe=recipe_audit_policy))
    assert ok.exit_code == 0 and not [f for f in ok.findings if f.severity == "error"]
    # a CK build that silently produced no extension (e.g. SKIP_CUDA_BUILD) is caught by the CK policy
    ck = run_audit([str(flash_attn_wheel)], targets=parse_arch_list("gfx942"), policy=load_policy(str(CK_RECIPE), read_recipe=recipe_audit_policy))
    assert ck.exit_code == 1
    assert any(f.check == "gpu-extension" and "flash_attn_2_cuda*.so is not among the audited files" in f.message
               for f in ck.findings)


def test_policy_imports_work_only_with_the_backend_switch_the_image_sets(site):
    modules = RECIPE.validation.imports
    code = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    with_switch = run_python(site, "", RECIPE.artifacts.env, "-c", code, *modules)
    assert with_switch.returncode == 0, with_switch.stderr[-1500:]
    assert RECIPE.validation.env == RECIPE.artifacts.env
    without = run_python(site, "import flash_attn")
    assert without.returncode != 0 and "flash_attn_2_cuda" in without.stderr


def test_forward_kernel_compiles_ahead_of_time_for_every_recipe_arch(site, tmp_path):
    env = {**RECIPE.artifacts.env, "TRITON_CACHE_DIR": str(tmp_path / "triton-cache")}  # compile for real, every run
    proc = run_python(site, "", env, str(HERE / "flash_attention_aot.py"),
                      "--arch", ",".join(RECIPE.arches), "--shape", "2,1024,16,128")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert [r["arch"] for r in rows] == RECIPE.arches
    for row in rows:
        assert row["status"] == "built" and row["hsaco_bytes"] > 0
        # the code object is really for that arch family: wave64 on CDNA, wave32 on RDNA
        expected_wave = 64 if get_arch(row["arch"]).family.startswith("CDNA") else 32
        assert row["resources"]["wavefront_size"] == expected_wave, row
