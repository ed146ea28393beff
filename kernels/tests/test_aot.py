"""The CPU half of the AOT story: build for AMD and NVIDIA targets with no GPU, check the manifest.

The GPU half (the runtime loads these entries and compiles nothing) is
kernels/scripts/prove_no_jit.py, run on the lent GPU.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rocstack_kernels import registry
from rocstack_kernels.configs import config_for, launch_options
from rocstack_kernels.prebuilt import activate, relocate
from rocstack_kernels.target import parse_target

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """Build through the real CLI, in a process without TRITON_INTERPRET (these tests' conftest sets it)."""
    out = tmp_path_factory.mktemp("aot") / "build"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "rocstack.cli.program", "kernels", "build",
                           "--arch", "gfx942,gfx90a,gfx950,sm90", "--out", str(out),
                           "--kernel", "silu_and_mul,fp8_rowwise_gemm,rotary_embedding,add_rms_norm"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "[1/" in done.stdout and "unsupported: gfx90a (CDNA2) has no FP8" in done.stdout  # progress lines
    return out


def test_build_refuses_bad_arguments_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    for args, message in ((["--arch", "gfx999"], "unknown arch"), (["--arch", "sm90", "--kernel", "nope"], "unknown kernel")):
        done = subprocess.run([sys.executable, "-m", "rocstack.cli.program", "kernels", "build", "--out",
                               str(tmp_path / "x"), *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "x").exists()


def test_manifest_records_every_specialization(build_dir):
    manifest = json.loads((build_dir / "manifest.json").read_text())
    assert manifest["schema"] == "rocstack.kernels-build/v1"
    assert manifest["targets"] == ["gfx942", "gfx90a", "gfx950", "sm90"]
    assert manifest["summary"]["failed"] == 0
    built = [e for e in manifest["entries"] if e["status"] == "built"]
    assert {(e["kernel"], e["target"]) for e in built} >= {
        ("silu_and_mul", "gfx942"), ("silu_and_mul", "gfx90a"), ("silu_and_mul", "sm90"),
        ("fp8_rowwise_gemm", "gfx942"), ("fp8_rowwise_gemm", "sm90"), ("rotary_embedding", "gfx90a")}
    for entry in built:
        blob = (build_dir / entry["code_object"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"]
        assert entry["signature"] and entry["constexprs"]
        resources = entry["resources"]
        if entry["target"].startswith("gfx"):
            assert entry["code_object_kind"] == "hsaco" and resources["vgprs"] > 0 and resources["sgprs"] > 0
            assert resources["wavefront_size"] == 64
        else:
            assert entry["code_object_kind"] == "cubin" and resources["registers"] > 0
    gemm_942 = next(e for e in built if e["kernel"] == "fp8_rowwise_gemm" and e["target"] == "gfx942")
    assert gemm_942["signature"]["a_ptr"] == "*fp8e4b8"  # e4m3fnuz on gfx942
    assert gemm_942["options"]["kpack"] == config_for("fp8_rowwise_gemm", parse_target("gfx942"))["kpack"]
    assert gemm_942["resources"]["lds_bytes"] > 0 and gemm_942["resources"]["vgpr_spills"] == 0
    gemm_sm90 = next(e for e in built if e["kernel"] == "fp8_rowwise_gemm" and e["target"] == "sm90")
    assert gemm_sm90["signature"]["a_ptr"] == "*fp8e4nv" and "kpack" not in gemm_sm90["options"]


def test_no_specialization_spills_on_any_target(build_dir):
    manifest = json.loads((build_dir / "manifest.json").read_text())
    spilling = [f"{e['kernel']} {e['label']} @{e['target']}" for e in manifest["entries"] if e["status"] == "built"
                and (e["resources"].get("vgpr_spills") or e["resources"].get("sgpr_spills")
                     or e["resources"].get("local_bytes"))]
    assert spilling == []


def test_fp8_on_gfx90a_is_recorded_unsupported_with_the_reason(build_dir):
    manifest = json.loads((build_dir / "manifest.json").read_text())
    rows = [e for e in manifest["entries"] if e["kernel"] == "fp8_rowwise_gemm" and e["target"] == "gfx90a"]
    assert [r["status"] for r in rows] == ["unsupported"]
    assert "no FP8" in rows[0]["reason"]


def test_moved_build_is_relocated_and_activated(build_dir, tmp_path, monkeypatch):
    import shutil

    import triton

    moved = tmp_path / "moved"
    shutil.copytree(build_dir, moved)
    groups = list((moved / "triton-cache").glob("*/__grp__*.json"))
    assert groups and all(str(build_dir) in g.read_text() for g in groups)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "elsewhere"))
    with triton.knobs.cache.scope():
        cache_dir = activate(moved)
        assert triton.knobs.cache.dir == str(cache_dir)
    for group in groups:
        for path in json.loads(group.read_text())["child_paths"].values():
            assert Path(path).is_file() and str(moved) in path
    assert relocate(moved / "triton-cache") == 0  # idempotent


def test_gfx950_configs_keep_kpack_1():
    assert config_for("fp8_rowwise_gemm", parse_target("gfx950"))["kpack"] == 1


def test_backend_only_options_reach_only_their_backend():
    # Each compiler rejects the other's knobs: AMD's on hip only, the register cap on cuda only.
    config = {"num_warps": 8, "num_stages": 2, "kpack": 2, "waves_per_eu": 2, "maxnreg": 168}
    assert launch_options(config, parse_target("gfx942")) == {"num_warps": 8, "num_stages": 2, "kpack": 2,
                                                              "waves_per_eu": 2}
    assert launch_options(config, parse_target("sm90")) == {"num_warps": 8, "num_stages": 2, "maxnreg": 168}


def test_registry_names_are_unique_and_every_entry_has_specs_and_bench_cases():
    entries = registry.entries()
    assert {"rms_norm", "add_rms_norm", "rotary_embedding", "silu_and_mul", "quantize_fp8_per_token",
            "fp8_rowwise_gemm"} <= set(entries)
    for entry in entries.values():
        specs = entry.specializations(parse_target("gfx942"))
        assert isinstance(specs, registry.Unsupported) or specs
        assert entry.bench_cases()


def test_runtime_python_key_matches_the_local_one_for_the_same_python():
    from rocstack_kernels.cache_key import local_basis, runtime_key

    basis, key = runtime_key(sys.executable)
    assert basis == local_basis() and key


def test_runtime_python_that_cannot_answer_is_a_clear_error(tmp_path):
    from rocstack_kernels.cache_key import runtime_key

    with pytest.raises(ValueError, match="cannot run --runtime-python"):
        runtime_key(str(tmp_path / "no-python"))
    with pytest.raises(ValueError, match="could not report its triton cache key"):
        runtime_key("/bin/false")


def test_activation_refuses_a_build_keyed_for_another_triton_build(build_dir, tmp_path):
    import shutil

    moved = tmp_path / "other-abi"
    shutil.copytree(build_dir, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["key_basis"].update(triton_key_sha256="0" * 64, python_ext_suffix=".cpython-399-x86_64-linux-gnu.so")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="keyed for another build of triton"):
        activate(moved)


def test_unusable_prebuilt_from_the_environment_warns_and_keeps_the_package_importable(tmp_path, monkeypatch):
    from rocstack_kernels.prebuilt import activate_from_env

    monkeypatch.setenv("ROCSTACK_KERNELS_PREBUILT", str(tmp_path / "missing"))
    with pytest.warns(RuntimeWarning, match=r"ROCSTACK_KERNELS_PREBUILT not used: .* \(no manifest.json\)"):
        assert activate_from_env() is None


def test_read_only_build_is_installed_into_the_users_triton_cache(build_dir, tmp_path, monkeypatch):
    import triton

    from rocstack_kernels import prebuilt

    # Root can write anywhere, so the read-only case is simulated at the one check.
    monkeypatch.setattr(prebuilt, "_writable", lambda path: False)
    user_cache = tmp_path / "user-cache"
    monkeypatch.setenv("TRITON_CACHE_DIR", str(user_cache))
    with triton.knobs.cache.scope():
        used = activate(build_dir)
    entries = sorted(p.name for p in (build_dir / "triton-cache").iterdir())
    assert used == user_cache.resolve() and sorted(p.name for p in user_cache.iterdir()) == entries
    for group in user_cache.glob("*/__grp__*.json"):
        assert all(str(user_cache) in path for path in json.loads(group.read_text())["child_paths"].values())
    assert prebuilt.install_into(build_dir / "triton-cache", user_cache) == 0  # already there


def _build_with_cache(package_root: Path, out: Path, cache: Path) -> dict:
    """`rocstack kernels build --cache` with rocstack_kernels imported from ``package_root``."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(package_root), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "rocstack.cli.program", "kernels", "build", "--arch", "gfx942",
                           "--out", str(out), "--kernel", "silu_and_mul,rotary_embedding", "--cache", str(cache)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=package_root)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads((out / "manifest.json").read_text())


def test_an_edit_to_one_kernel_recompiles_only_its_specializations(tmp_path):
    """The build's Triton cache persists (--cache, a BuildKit cache mount in images): entries are keyed by
    each kernel's source, so editing silu_and_mul recompiles its specializations and takes the others from the cache."""
    import shutil

    import rocstack_kernels

    package = tmp_path / "src"
    shutil.copytree(Path(rocstack_kernels.__file__).parent, package / "rocstack_kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    first = _build_with_cache(package, tmp_path / "one", cache)
    assert first["from_cache"] == 0 and first["summary"]["built"] > 2
    again = _build_with_cache(package, tmp_path / "two", cache)
    assert again["from_cache"] == again["summary"]["built"]  # nothing edited: nothing compiles
    source = package / "rocstack_kernels" / "silu_and_mul.py"
    lines = source.read_text().splitlines(keepends=True)
    # a comment as the first line of the jit function's body: whatever the kernel's code is today
    start = next(i for i, line in enumerate(lines) if line.startswith("def _silu_and_mul_kernel("))
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":"))
    lines.insert(end + 1, "    # an edit inside the kernel\n")
    source.write_text("".join(lines))
    edited = _build_with_cache(package, tmp_path / "three", cache)
    rebuilt = {e["kernel"] for e in edited["entries"] if e["status"] == "built" and not e["cached"]}
    reused = {e["kernel"] for e in edited["entries"] if e["status"] == "built" and e["cached"]}
    assert rebuilt == {"silu_and_mul"} and reused == {"rotary_embedding"}
    before = {(e["kernel"], e["label"]): e["sha256"] for e in first["entries"] if e["status"] == "built"}
    for entry in edited["entries"]:
        if entry["kernel"] == "rotary_embedding":
            assert entry["sha256"] == before[(entry["kernel"], entry["label"])]
            assert (tmp_path / "three" / entry["code_object"]).is_file()  # copied out of the cache into the build
