"""The bake file: golden files in buildx's JSON schema, read back by buildx itself, and the CLI's refusals.

Regenerate the goldens after an intended change with ``ROCSTACK_UPDATE_GOLDEN=1 pytest tests/imaging/test_bakefile.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_runner import run_cli
from rocstack.imaging.bakefile import CACHE_VARIABLE, PREFIX_VARIABLE, MatrixEntry, Secrets, bake_document, cache_key, dumps
from rocstack.recipes.catalog import Catalog, select
from rocstack.render import render_dockerfile

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "bake"
CONTEXTS = Path("/rocstack-home/contexts")  # stands for $ROCSTACK_HOME/contexts in the goldens
SECRETS = Secrets(Path("/rocstack-home/bake/pip.conf"), Path("/etc/ssl/certs/ca-certificates.crt"))
MATRICES = {
    # production stacks x two arch sets, with a registry cache
    "production": (["rocm70-ubuntu2404", "rocm64-ubuntu2204"], ["gfx942", "gfx90a,gfx942"], "registry.example:5000/rocstack-cache"),
    # the locally built stacks, no cache
    "local": (["local", "local-upstream"], ["gfx942"], ""),
}


def _entries(stacks, arch_sets):
    catalog = Catalog(REPO)
    entries = []
    for stack in stacks:
        for arch in arch_sets:
            selection = select(catalog, stack, arch)
            entries.append(MatrixEntry(selection, render_dockerfile(selection), CONTEXTS / stack))
    return entries


def _document(name: str, secrets: Secrets = SECRETS) -> dict:
    stacks, arch_sets, cache = MATRICES[name]
    return bake_document(_entries(stacks, arch_sets), secrets, {PREFIX_VARIABLE: "rocstack", CACHE_VARIABLE: cache})


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_golden_bake_files(name):
    text = dumps(_document(name))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("ROCSTACK_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"missing golden {golden.name}: run with ROCSTACK_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_one_target_per_stack_and_arch_set_with_its_cache_keyed_on_pins():
    document = _document("production")
    assert document["group"]["default"]["targets"] == [
        "rocm70-ubuntu2404-gfx942", "rocm70-ubuntu2404-gfx90a_gfx942", "rocm64-ubuntu2204-gfx942", "rocm64-ubuntu2204-gfx90a_gfx942"]
    target = document["target"]["rocm70-ubuntu2404-gfx942"]
    key = cache_key(select(Catalog(REPO), "rocm70-ubuntu2404", "gfx942"))
    assert target["cache-to"] == [f"type=registry,ref=${{{CACHE_VARIABLE}}}:rocm70-ubuntu2404-gfx942-{key},mode=max"]
    assert target["cache-from"] == [f"type=registry,ref=${{{CACHE_VARIABLE}}}:rocm70-ubuntu2404-gfx942-{key}"]
    assert target["tags"] == [f"${{{PREFIX_VARIABLE}}}/rocm70-ubuntu2404:gfx942-latest"]
    assert target["secret"] == SECRETS.specs() and target["target"] == "runtime"
    assert target["labels"]["io.rocstack.arches"] == "gfx942"
    # the key moves with a component pin, and only for the stacks that hold that component
    keys = {cache_key(select(Catalog(REPO), s, "gfx942")) for s in ("rocm70-ubuntu2404", "rocm64-ubuntu2204")}
    assert len(keys) == 2
    assert "cache-from" not in _document("local")["target"]["local-gfx942"]


def test_a_bake_target_carries_a_dollar_brace_literally():
    """buildx reads JSON strings as HCL templates: a recipe's ${VAR} must reach the Dockerfile as written."""
    entry = _entries(["local"], ["gfx942"])[0]
    text = entry.dockerfile + "RUN echo ${HOME} %{x}\n"
    document = bake_document([MatrixEntry(entry.selection, text, entry.context)], SECRETS, {PREFIX_VARIABLE: "p"})
    assert "RUN echo $${HOME} %%{x}" in document["target"]["local-gfx942"]["dockerfile-inline"]


def _buildx() -> list[str]:
    for docker in (shutil.which("docker"), "/usr/bin/docker"):
        if docker and subprocess.run([docker, "buildx", "version"], capture_output=True).returncode == 0:
            return [docker, "buildx"]
    pytest.skip("docker buildx is not installed (scripts/setup.sh installs Debian's docker-buildx)")


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_buildx_reads_the_bake_file_as_rocstack_wrote_it(name, tmp_path):
    """`docker buildx bake --print` (needs no engine) parses the file: same targets, the Dockerfile byte for
    byte after HCL unescaping, and the variables taken from the environment."""
    (tmp_path / "pip.conf").write_text("[global]\n")
    (tmp_path / "ca.crt").write_text("")
    secrets = Secrets(tmp_path / "pip.conf", tmp_path / "ca.crt")  # buildx checks that secret files exist
    document = _document(name, secrets)
    entry = _entries(["local"], ["gfx942"])[0]
    if name == "local":  # a literal ${...} survives buildx's templating
        document["target"]["local-gfx942"]["dockerfile-inline"] = bake_document(
            [MatrixEntry(entry.selection, entry.dockerfile + "RUN echo ${HOME}\n", entry.context)], secrets,
            {PREFIX_VARIABLE: "p"})["target"]["local-gfx942"]["dockerfile-inline"]
    path = tmp_path / "docker-bake.json"
    path.write_text(dumps(document))
    env = {**os.environ, PREFIX_VARIABLE: "registry.example/team", CACHE_VARIABLE: "cache.example/c"}
    done = subprocess.run([*_buildx(), "bake", "-f", str(path), "--print"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert sorted(printed["group"]["default"]["targets"]) == sorted(document["group"]["default"]["targets"])  # buildx sorts them
    for target_name, target in printed["target"].items():
        ours = document["target"][target_name]
        expected = ours["dockerfile-inline"].replace("$${", "${").replace("%%{", "%{")
        assert target["dockerfile-inline"].replace("$${", "${") == expected
        assert target["tags"][0].startswith("registry.example/team/")
        assert target["context"] == ours["context"] and target["target"] == "runtime"
        if name == "production":
            assert target["cache-to"][0]["ref"].startswith("cache.example/c:") and target["cache-to"][0]["mode"] == "max"
    if name == "local":
        assert "RUN echo ${HOME}" in printed["target"]["local-gfx942"]["dockerfile-inline"].replace("$${", "${")


def test_bake_cli_prints_and_writes_the_file(tmp_path):
    out = tmp_path / "docker-bake.json"
    done = run_cli("bake", "--stack", "rocm70-ubuntu2404", "--arch", "gfx942", "--arch", "gfx942,gfx950",
                   "--cache", "127.0.0.1:5000/cache", "--set", "ROCSTACK_IMAGE_PREFIX=registry.example/team",
                   "--out", str(out), "--print")
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert json.loads(done.stdout) == document
    assert document["variable"][PREFIX_VARIABLE]["default"] == "registry.example/team"
    assert document["variable"][CACHE_VARIABLE]["default"] == "127.0.0.1:5000/cache"
    assert sorted(document["target"]) == ["rocm70-ubuntu2404-gfx942", "rocm70-ubuntu2404-gfx942_gfx950"]
    context = Path(document["target"]["rocm70-ubuntu2404-gfx942"]["context"])
    assert (context / "rocstack" / "pyproject.toml").is_file()  # the staged context exists for buildx
    conf = Path(document["target"]["rocm70-ubuntu2404-gfx942"]["secret"][0].split("src=")[1])
    assert conf.is_file() and oct(conf.stat().st_mode & 0o777) == "0o600"
    assert f"docker buildx bake -f {out}" in done.stderr


def test_bake_writes_docker_bake_json_by_default(tmp_path):
    """Without --out/--print/--run: buildx's default file name, so plain `docker buildx bake` reads it."""
    done = run_cli("bake", "--stack", "rocm70-ubuntu2404", "--arch", "gfx942", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(json.loads((tmp_path / "docker-bake.json").read_text())["target"]) == ["rocm70-ubuntu2404-gfx942"]
    assert "run it with `docker buildx bake`" in done.stderr


@pytest.mark.parametrize("args,message", [
    (["--print", "--set", "NOPE"], "has no '='"),
    (["--print", "--set", "FOO=1"], "neither a variable"),
    (["--print", "--set", "*.platform=linux/arm64"], "only buildx applies"),
    (["--print", "--arch", "gfx942", "--arch", "gfx942"], "in the matrix twice"),
    (["--print", "--stack", "nope"], "unknown stack 'nope'"),
    (["--print", "--arch", "gfx1030"], "cannot target gfx1030"),
    (["--print", "--cache", "not a registry"], "does not start with a registry host"),
    (["--print", "--builder", "x"], "--builder needs --run"),
    (["--run", "--stack", "rocm70-ubuntu2404", "--builder", "rocstack-no-such-builder"], "unknown builder 'rocstack-no-such-builder'"),
])
def test_bake_refuses_bad_input_in_one_line(args, message):
    if "--run" in args:
        _buildx()
    done = run_cli("bake", *(args if "--stack" in args else ["--stack", "rocm70-ubuntu2404", *args]))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
