"""Upstream components in the production stacks: goldens, and each rendered build step
checked against the flags upstream documents (setup.py / CI scripts), plus the arches
refused before any build starts.

The goldens of every stack, these included, are checked by tests/test_render.py.
"""

from __future__ import annotations

import re
import shlex

import pytest

from rendered import CATALOG, REPO, render, run_commands, stage_commands, stage_env
from rocstack.errors import ArchError
from rocstack.recipes.catalog import select


PRODUCTION = [s.name for s in CATALOG.stacks() if s.rocm is not None]


def test_every_production_stack_renders_with_the_upstream_components():
    assert {"rocm64-ubuntu2204", "rocm70-ubuntu2404", "rocm70-ubuntu2404-triton"} <= set(PRODUCTION)
    found = set()
    for name in PRODUCTION:
        text = render(name)
        found |= {line.split("AS build-")[1] for line in text.splitlines() if " AS build-" in line}
    assert {"flash-attention-ck", "flash-attention-triton", "xformers"} <= found
    assert {"fbgemm-gpu-rocm", "fbgemm-gpu-rocm6"} <= found


def test_flash_attention_ck_gets_gpu_archs_semicolon_separated_and_memory_bounded_jobs():
    text = render("rocm70-ubuntu2404", "gfx942,gfx950")
    env = stage_env(text, "flash-attention-ck")
    # setup.py: os.getenv("GPU_ARCHS", "native").split(";"), each checked against the allowed list
    assert env["GPU_ARCHS"] == "gfx942;gfx950"
    assert env["FLASH_ATTENTION_FORCE_BUILD"] == "TRUE" and env["BUILD_TARGET"] == "rocm"
    # ~9 GB per job, as setup.py sizes it: the builder decides MAX_JOBS from that when the stage runs
    assert 'MAX_JOBS="$(rocstack-jobs flash-attention-ck 9 0)"' in stage_commands(text, "flash-attention-ck")
    # features are stripped: setup.py compares each entry to the bare processor names
    feat = stage_env(render("rocm70-ubuntu2404", "gfx942:sramecc+:xnack-"), "flash-attention-ck")
    assert feat["GPU_ARCHS"] == "gfx942"


def test_xformers_gets_hip_architectures_space_separated_and_ck_always_on():
    text = render("rocm64-ubuntu2204", "gfx90a,gfx942")
    env = stage_env(text, "xformers")
    assert env["HIP_ARCHITECTURES"] == "gfx90a gfx942"  # setup.py: .split() on whitespace
    assert env["XFORMERS_CK_FLASH_ATTN"] == "1"
    assert "PYTORCH_ROCM_ARCH" not in env  # does not select arches in xFormers: never pretend it does
    # the build step refuses a wheel whose cpp_lib.json records no HIP version
    assert 'info["version"]["hip"]' in stage_commands(text, "xformers")


@pytest.mark.parametrize("stack,arch,component", [
    ("rocm64-ubuntu2204", "gfx90a,gfx942", "fbgemm-gpu-rocm6"),
    ("rocm70-ubuntu2404", "gfx942,gfx950", "fbgemm-gpu-rocm"),
])
def test_fbgemm_gets_upstreams_rocm_build_variant_and_amdgpu_targets(stack, arch, component):
    text = render(stack, arch)
    env = stage_env(text, component)
    listed = arch.split(",")
    # .github/scripts/fbgemm_gpu_build.bash: -DAMDGPU_TARGETS="${arch_list}" (comma list) and
    # PYTORCH_ROCM_ARCH, which fbgemm_gpu/cmake/Hip.cmake turns into --offload-arch flags
    assert env["ROCSTACK_CMAKE_ARGS"] == f"-DAMDGPU_TARGETS={','.join(listed)}"
    assert env["PYTORCH_ROCM_ARCH"] == ";".join(listed)
    commands = stage_commands(text, component)
    for flag in ("--build-variant=rocm", "--build-target=default", "-DHIP_ROOT_DIR=/opt/rocm", "BUILD_ROCM_VERSION="):
        assert flag in commands
    assert "$ROCSTACK_CMAKE_ARGS" in commands  # the targets reach setup.py as --build-option


def test_flash_attention_triton_builds_without_a_cxx_extension():
    text = render("local-upstream", "gfx942")
    env = stage_env(text, "flash-attention-triton")
    assert env["FLASH_ATTENTION_TRITON_AMD_ENABLE"] == "TRUE"
    assert env["FLASH_ATTENTION_SKIP_CUDA_BUILD"] == "TRUE" and env["FLASH_ATTENTION_FORCE_BUILD"] == "TRUE"
    assert "--no-build-isolation" in stage_commands(text, "flash-attention-triton")
    recipe = CATALOG.component("flash-attention-triton")
    assert recipe.build.toolchain == "triton" and not recipe.validation.gpu_extensions
    assert recipe.artifacts.env["FLASH_ATTENTION_TRITON_AMD_ENABLE"] == "TRUE"  # flash_attn imports otherwise fail


def test_git_components_are_pinned_to_commits_with_submodules():
    text = render("rocm70-ubuntu2404", "gfx942")
    for name in ("flash-attention-ck", "xformers", "fbgemm-gpu-rocm"):
        recipe = CATALOG.component(name)
        body = stage_commands(text, name)
        assert f"checkout --detach {recipe.source.ref}" in body
        assert "submodule update --init --recursive" in body
    versions = re.search(r"printf '%s\\n' (.*) > /opt/rocstack/versions.txt", text).group(1)
    assert "fbgemm-gpu-rocm 1.5.0 https://github.com/pytorch/FBGEMM.git@fc41cb7fa937d9a33ccb22ae463f9efd8855b524" in versions


def test_gfx1100_is_refused_for_flash_attention_ck_before_any_build():
    with pytest.raises(ArchError, match=r"flash-attention-ck cannot target gfx1100: it supports gfx90a, gfx942, gfx950 \(CK"):
        select(CATALOG, "rocm70-ubuntu2404", "gfx942,gfx1100")
    # the Triton stack takes RDNA
    assert select(CATALOG, "rocm70-ubuntu2404-triton", "gfx1100").arch_list == "gfx1100"


@pytest.mark.parametrize("stack", ["rocm64-ubuntu2204"])
def test_gfx950_is_refused_on_rocm_6_4_before_any_build(stack):
    with pytest.raises(ArchError) as info:
        select(CATALOG, stack, "gfx942,gfx950")
    message = info.value.one_line()
    assert "ROCm 6.4 (stack rocm64-ubuntu2204) cannot target gfx950: it needs ROCm >= 7.0" in message
    assert "fbgemm-gpu-rocm6 cannot target gfx950" in message  # FBGEMM 1.4 does not list it either


def test_stack_torch_matches_the_fbgemm_release_it_pins():
    """FBGEMM follows PyTorch one-to-one (Releases table): 1.4 -> 2.9, 1.5 -> 2.10, 1.8 -> 2.13."""
    expected = {"1.4.0": "2.9", "1.5.0": "2.10", "1.8.0": "2.13"}
    for stack in CATALOG.stacks():
        for name in stack.components:
            if name.startswith("fbgemm-gpu"):
                recipe = CATALOG.component(name)
                torch_minor = ".".join(stack.torch.version.split(".")[:2])
                assert expected[recipe.version] == torch_minor, f"{stack.name}: {name} {recipe.version} vs torch {stack.torch.version}"


@pytest.mark.parametrize("stack", PRODUCTION + ["local-upstream"])
def test_every_rendered_run_step_is_valid_sh_and_its_python_compiles(stack):
    """/bin/sh (dash on Debian and Ubuntu) must parse each RUN; python -c snippets must compile."""
    import subprocess

    snippets = []
    for command in run_commands(render(stack)):
        proc = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{stack}: sh cannot parse: {command[:200]} ({proc.stderr.strip()})"
        words = shlex.split(command)
        snippets += [words[i + 1] for i in range(1, len(words) - 1) if words[i] == "-c" and words[i - 1].startswith("python")]
    for snippet in snippets:
        compile(snippet, f"<{stack} RUN python -c>", "exec")
    if "xformers" in CATALOG.stack(stack).components:  # its cpp_lib.json guard is one of them
        assert any('info["version"]["hip"]' in s for s in snippets)
