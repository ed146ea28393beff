"""The locally built base image: its inputs, and reuse on the real engine."""

from __future__ import annotations

import pytest

from cli_runner import run_cli
from rocstack.contracts import LABEL_BASE_INPUTS as INPUTS_LABEL
from rocstack.imaging.base import base_inputs, debian_mirror, inputs_hash
from rocstack.recipes.basekey import debootstrap_tag
from rocstack.recipes.catalog import Catalog

from build_helpers import REPO


def test_the_mirror_comes_from_apt_sources_in_either_format(tmp_path, monkeypatch):
    monkeypatch.delenv("ROCSTACK_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example.test/debian\nSuites: bookworm\n"
    )
    assert debian_mirror(tmp_path) == "http://mirror.example.test/debian"
    (tmp_path / "sources.list").write_text("deb [arch=amd64] https://deb.example.test/debian/ bookworm main\n")
    assert debian_mirror(tmp_path) == "https://deb.example.test/debian"
    monkeypatch.setenv("ROCSTACK_DEBIAN_MIRROR", "http://chosen.example.test/debian")
    assert debian_mirror(tmp_path) == "http://chosen.example.test/debian"


def test_the_inputs_hash_moves_with_mirror_and_packages(monkeypatch):
    stack = Catalog(REPO).stack("local")
    monkeypatch.setenv("ROCSTACK_DEBIAN_MIRROR", "http://a.example.test/debian")
    first = inputs_hash(base_inputs(stack))
    monkeypatch.setenv("ROCSTACK_DEBIAN_MIRROR", "http://b.example.test/debian")
    assert inputs_hash(base_inputs(stack)) != first
    bigger = stack.model_copy(update={"base": stack.base.model_copy(update={
        "debootstrap": stack.base.debootstrap.model_copy(update={"include": [*stack.base.debootstrap.include, "git"]})})})
    assert inputs_hash(base_inputs(bigger)) != inputs_hash(base_inputs(stack))


@pytest.mark.slow
def test_base_is_built_once_and_then_reused(docker_engine):
    first = run_cli("base", "--stack", "local")
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli("base", "--stack", "local")
    assert second.returncode == 0 and second.stdout.strip().endswith("(reused)")
    stack = Catalog(REPO).stack("local")
    tag, image_id = second.stdout.split()[:2]
    assert tag == debootstrap_tag(stack) and first.stdout.split()[1] == image_id
    image = docker_engine.images.get(tag)
    assert image.labels[INPUTS_LABEL] == inputs_hash(base_inputs(stack))
    out = docker_engine.containers.run(tag, ["python3", "-c", "import venv, ssl; print('ok')"], remove=True)
    assert out.decode().strip() == "ok"
