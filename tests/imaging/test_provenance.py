"""OCI labels from the checkout and the base: revision and source of a real git repository, base digests."""

from __future__ import annotations

import subprocess

from rocstack.imaging.provenance import BASE_DIGEST, BASE_NAME, CREATED, REVISION, SOURCE, base_labels, checkout_facts, oci_labels

DIGEST = "sha256:" + "ab" * 32


def _git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_revision_and_source_come_from_the_checkout(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "x.yaml").write_text("a: 1\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "recipes")
    assert checkout_facts(tmp_path) == {REVISION: _git(tmp_path, "rev-parse", "HEAD")}  # no remote: no source label
    _git(tmp_path, "remote", "add", "origin", "https://git.example.invalid/team/rocstack.git")
    assert checkout_facts(tmp_path)[SOURCE] == "https://git.example.invalid/team/rocstack.git"


def test_a_tree_that_is_no_checkout_gets_no_guessed_labels(tmp_path):
    assert checkout_facts(tmp_path) == {}
    assert oci_labels(tmp_path, "2026-01-01T00:00:00Z", {}) == {CREATED: "2026-01-01T00:00:00Z"}


def test_base_digest_prefers_the_pin_then_the_registry_then_the_local_id():
    assert base_labels(f"rocm/dev:7.0@{DIGEST}", [], None) == {BASE_NAME: "rocm/dev:7.0", BASE_DIGEST: DIGEST}
    assert base_labels("rocm/dev:7.0", [f"rocm/dev@{DIGEST}"], "sha256:" + "cd" * 32)[BASE_DIGEST] == DIGEST
    assert base_labels("rocstack-base/local:x", [], "sha256:" + "cd" * 32)[BASE_DIGEST] == "sha256:" + "cd" * 32
    assert base_labels("rocm/dev:7.0", [], None) == {BASE_NAME: "rocm/dev:7.0"}  # not pulled yet: no digest guessed
