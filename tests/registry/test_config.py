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
