"""Host package-index settings: read from the real pip, handed over without touching disk for long."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rocstack.imaging.index import build_secret_args, host_index_settings
from rocstack.errors import RocstackError


@pytest.fixture
def pip_env(tmp_path, monkeypatch):
    """A pip configuration made of one file and the environment (no user/global files)."""
    for name in list(__import__("os").environ):
        if name.startswith("PIP_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    conf = tmp_path / "pip.conf"
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("HOME", str(tmp_path))  # hides ~/.config/pip/pip.conf
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    return conf


def test_settings_come_from_pip_config_and_host_paths_are_not_passed(pip_env, tmp_path, monkeypatch):
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pip_env.write_text(
        "[global]\n"
        f"cert = {cert}\n"
        "index-url = https://user:s3cret@pypi.example.test/simple\n"
        f"extra-index-url = file:///opt/pypi/simple https://mirror.example.test/simple\n"
        f"find-links = {wheels}\n"
        "trusted-host = mirror.example.test\n"
    )
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "90")
    settings = host_index_settings(sys.executable)
    assert settings.cert == cert
    assert settings.index_url == "https://user:s3cret@pypi.example.test/simple"
    assert settings.extra_index_urls == ["https://mirror.example.test/simple"]
    assert settings.find_links == [wheels]
    assert settings.timeout == "90"
    assert settings.not_passed == ["extra-index-url file:///opt/pypi/simple (a host path)"]
    conf = settings.pip_conf()
    assert "index-url = https://user:s3cret@pypi.example.test/simple" in conf
    assert "file://" not in conf and str(wheels) not in conf and "cert" not in conf
    assert "https://user:s3cret@pypi.example.test/simple" in settings.secret_values()


def test_secrets_are_files_that_vanish_and_proxies_are_passed_by_name(pip_env, monkeypatch, tmp_path):
    pip_env.write_text("[global]\nindex-url = https://token@pypi.example.test/simple\n")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy-user:pw@proxy.example.test:3128")
    monkeypatch.setenv("no_proxy", "localhost")
    settings = host_index_settings(sys.executable)
    with build_secret_args(settings) as args:
        joined = " ".join(args)
        conf = Path(args[args.index("--secret") + 1].split("src=", 1)[1])
        assert conf.read_text() == settings.pip_conf()
        assert oct(conf.parent.stat().st_mode & 0o777) == "0o700"
        assert "--build-arg HTTPS_PROXY" in joined and "--build-arg no_proxy" in joined
        assert "proxy.example.test" not in joined and "token@" not in joined  # values never on the command line
    assert not conf.exists() and not conf.parent.exists()


def test_a_missing_ca_bundle_is_a_one_line_error(pip_env, tmp_path):
    pip_env.write_text(f"[global]\ncert = {tmp_path / 'missing.pem'}\n")
    with pytest.raises(RocstackError) as info:
        host_index_settings(sys.executable)
    assert "does not exist" in info.value.one_line() and "\n" not in info.value.one_line()


def test_a_later_pip_file_wins_and_a_command_section_wins_over_global(pip_env, tmp_path):
    """pip lists /etc/pip.conf's cert before PIP_CONFIG_FILE's (load order): the later one is the one pip uses
    (seen on a machine whose /etc/pip.conf names the system bundle)."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\ncat <<'OUT'\nglobal.cert='/etc/first.pem'\nglobal.index-url='https://a.test/simple'\n"
                    "install.index-url='https://b.test/simple'\nglobal.cert='/etc/second.pem'\n"
                    ":env:.default-timeout='30'\nOUT\n")
    fake.chmod(0o755)
    from rocstack.imaging.index import _pip_config

    assert _pip_config(str(fake)) == {"cert": "/etc/second.pem", "index-url": "https://b.test/simple",
                                      "default-timeout": "30"}
