"""Default registry resolution and config.json handling."""

from __future__ import annotations

import json

import pytest

from rocstack.errors import RocstackError
from rocstack.registry.config import default_registry, load_config, update_config


def test_flag_then_env_then_config(monkeypatch, rocstack_home):
    monkeypatch.delenv("ROCSTACK_REGISTRY", raising=False)
    with pytest.raises(RocstackError, match="no registry given"):
        default_registry()
    update_config(lambda c: c.__setitem__("registry", "cfg.example/r"))
    assert default_registry() == "cfg.example/r"
    monkeypatch.setenv("ROCSTACK_REGISTRY", "env.example/r")
    assert default_registry() == "env.example/r"
    assert default_registry("flag.example/r") == "flag.example/r"


def test_update_keeps_other_keys(rocstack_home):
    (rocstack_home / "config.json").write_text(json.dumps({"owned_by_someone_else": [1, 2]}))
    update_config(lambda c: c.__setitem__("registry", "x.example/r"))
    assert load_config() == {"owned_by_someone_else": [1, 2], "registry": "x.example/r"}


def test_corrupt_config_is_one_clear_error(rocstack_home):
    (rocstack_home / "config.json").write_text("{broken")
    with pytest.raises(RocstackError, match="cannot read rocstack config"):
        load_config()


def test_home_and_config_are_private_whatever_the_umask(tmp_path, monkeypatch):
    """Under umask 000 the state directory is still 0700 and the trust list 0600."""
    import os
    import stat

    from rocstack.contracts import rocstack_home

    home = tmp_path / "fresh-home"
    monkeypatch.setenv("ROCSTACK_HOME", str(home))
    old = os.umask(0)
    try:
        update_config(lambda c: c.update(registry="localhost:5000/x"))
    finally:
        os.umask(old)
    assert rocstack_home() == home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600


def test_a_config_others_can_write_is_not_trusted(tmp_path, monkeypatch):
    import pytest

    from rocstack.errors import RocstackError

    monkeypatch.setenv("ROCSTACK_HOME", str(tmp_path))
    update_config(lambda c: c.update(registry="localhost:5000/x"))
    (tmp_path / "config.json").chmod(0o666)
    with pytest.raises(RocstackError, match="refusing to trust .*config.json.*another local user"):
        load_config()
    (tmp_path / "config.json").chmod(0o600)
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(RocstackError, match="chmod 700"):
            load_config()
    finally:
        tmp_path.chmod(0o700)
    assert load_config()["registry"] == "localhost:5000/x"
