"""Engine access and refusals that must happen before (or without) an engine."""

from __future__ import annotations

import os
import stat

import pytest

from cli_runner import run_cli
from rocstack import engine
from rocstack.errors import EngineError

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def test_a_missing_engine_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    with pytest.raises(EngineError) as info:
        engine.connect()
    line = info.value.one_line()
    assert "socket /nonexistent/docker.sock does not exist" in line and "scripts/start-dockerd.sh" in line


def test_an_engine_that_does_not_answer_is_one_line(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    with pytest.raises(EngineError) as info:
        engine.connect(timeout=5)
    assert "does not answer" in info.value.one_line() and "\n" not in info.value.one_line()


def _fake_cli(tmp_path, version: str, buildx: bool):
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = "--version" ] && echo "Docker version {version}, build abc" && exit 0\n'
        f'[ "$1" = "buildx" ] && exit {0 if buildx else 1}\n'
        "exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize(
    "version, buildx, expected",
    [("20.10.24+dfsg1", False, ("build",)), ("28.2.2", True, ("buildx", "build", "--load")), ("28.2.2", False, None)],
)
def test_the_buildkit_cli_is_chosen_by_what_the_client_can_do(tmp_path, monkeypatch, version, buildx, expected):
    monkeypatch.setenv("ROCSTACK_DOCKER_CLI", str(_fake_cli(tmp_path, version, buildx)))
    engine.buildkit_cli.cache_clear()
    try:
        if expected is None:
            with pytest.raises(EngineError) as info:
                engine.buildkit_cli()
            assert "no buildx plugin" in info.value.one_line() and "docker.io" in info.value.one_line()
        else:
            cli = engine.buildkit_cli()
            assert cli.argv[1:] == expected
            assert ("DOCKER_BUILDKIT", "1") in cli.env if version.startswith("20.") else not cli.env
    finally:
        engine.buildkit_cli.cache_clear()


def test_an_arch_no_component_can_target_is_refused_before_the_engine():
    result = run_cli("build", "--arch", "gfx1030", env=NO_ENGINE)
    assert result.returncode == 2
    assert "rocstack-kernels cannot target gfx1030" in result.stderr
    assert "Docker" not in result.stderr and "Traceback" not in result.stderr


def test_a_wheelhouse_without_torch_is_refused_before_the_engine(tmp_path):
    result = run_cli("build", "--arch", "gfx942", "--wheelhouse", str(tmp_path), env=NO_ENGINE)
    assert result.returncode == 2
    assert "has no torch-2.13.0 wheel" in result.stderr and "Docker" not in result.stderr


def test_base_without_an_engine_says_how_to_start_one():
    result = run_cli("base", "--stack", "local", env=NO_ENGINE)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "scripts/start-dockerd.sh" in result.stderr
    assert "Traceback" not in result.stderr


def test_base_refuses_a_stack_on_a_registry_image():
    result = run_cli("base", "--stack", "rocm64-ubuntu2204", env={**os.environ, **NO_ENGINE})
    assert result.returncode == 2 and "not a locally built base" in result.stderr
