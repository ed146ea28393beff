"""Key generation, trust list and signing-key loading (files in a temp ROCSTACK_HOME)."""

from __future__ import annotations

import json
import stat

import pytest

from rocstack.errors import RocstackError
from rocstack.registry import keys

from regtest_support import run_rocstack


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_private_key_0600_and_trusts_public_half(rocstack_home):
    made = keys.generate_key("team-a")
    assert _mode(made.private_path) == 0o600
    assert _mode(made.private_path.parent) == 0o700
    assert b"PRIVATE KEY" in made.private_path.read_bytes()
    config = json.loads((rocstack_home / "config.json").read_text())
    assert config["signing_key"] == made.key_id
    assert config["trusted_keys"][made.key_id]["name"] == "team-a"
    assert made.key_id in keys.trusted_keys()
    loaded = keys.load_signing_key()
    assert keys.key_id(loaded.public_key()) == made.key_id
    # the private key is nowhere in the config
    assert "PRIVATE" not in (rocstack_home / "config.json").read_text()


def test_second_key_becomes_signing_key_and_first_stays_trusted():
    first = keys.generate_key()
    second = keys.generate_key()
    assert second.previous_signing_key == first.key_id
    assert set(keys.trusted_keys()) == {first.key_id, second.key_id}


def test_trust_public_key_from_other_home(tmp_path, monkeypatch, rocstack_home):
    monkeypatch.setenv("ROCSTACK_HOME", str(tmp_path / "publisher"))
    published = keys.generate_key("publisher")
    monkeypatch.setenv("ROCSTACK_HOME", str(rocstack_home))
    assert keys.trusted_keys() == {}
    assert keys.trust_key(published.public_path, "their team") == published.key_id
    assert list(keys.trusted_keys()) == [published.key_id]
    keys.untrust_key(published.key_id)
    assert keys.trusted_keys() == {}


def test_trusting_a_private_key_file_is_refused():
    made = keys.generate_key()
    with pytest.raises(RocstackError, match="holds a private key"):
        keys.trust_key(made.private_path)


def test_trusting_garbage_is_refused(tmp_path):
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    with pytest.raises(RocstackError, match="is not an ed25519 public key"):
        keys.trust_key(junk)


def test_signing_key_readable_by_others_is_refused():
    made = keys.generate_key()
    made.private_path.chmod(0o644)
    with pytest.raises(RocstackError, match=r"readable by others \(mode 0644\)"):
        keys.load_signing_key()


def test_no_signing_key_configured():
    with pytest.raises(RocstackError, match="no signing key configured"):
        keys.load_signing_key()


def test_tampered_trust_entry_is_refused(rocstack_home):
    first, second = keys.generate_key(), keys.generate_key()
    config = json.loads((rocstack_home / "config.json").read_text())
    config["trusted_keys"][first.key_id]["public_key"] = config["trusted_keys"][second.key_id]["public_key"]
    (rocstack_home / "config.json").write_text(json.dumps(config))
    with pytest.raises(RocstackError, match="holds a different key"):
        keys.trusted_keys()


def test_cli_keys_generate_trust_list(capsys, rocstack_home):
    code, out, _ = run_rocstack(capsys, "keys", "generate", "--name", "ci")
    assert code == 0 and "mode 0600" in out and "ed25519:" in out
    private = next((rocstack_home / "keys").glob("*.key"))
    assert private.read_text().splitlines()[1] not in out  # the key itself is never printed
    code, out, _ = run_rocstack(capsys, "keys", "list")
    assert code == 0 and "ci" in out and "yes" in out
    code, _, err = run_rocstack(capsys, "keys", "trust", str(private))
    assert code == 2
    assert err.strip().count("\n") == 0 and "holds a private key" in err and "Traceback" not in err


def test_explicit_key_file_signs(tmp_path, monkeypatch, rocstack_home):
    monkeypatch.setenv("ROCSTACK_HOME", str(tmp_path / "elsewhere"))
    made = keys.generate_key()
    monkeypatch.setenv("ROCSTACK_HOME", str(rocstack_home))
    loaded = keys.load_signing_key(made.private_path)  # no signing key configured here, --key given
    assert keys.key_id(loaded.public_key()) == made.key_id
    not_private = made.public_path.rename(tmp_path / "public-as.key")
    not_private.chmod(0o600)
    with pytest.raises(RocstackError, match="is not an unencrypted PEM private key"):
        keys.load_signing_key(not_private)
