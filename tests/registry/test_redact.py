"""Credentials in report text are masked before an attestation is signed."""

from __future__ import annotations

from rocstack.registry.redact import redact


def test_url_userinfo_and_known_secrets_are_masked_everywhere():
    report = {
        "checks": [
            {"evidence": "Looking in indexes: https://bob:tok3n@pypi.corp.example/simple, http://a:b@x/"},
            {"evidence": ["pushed with hunter22 as password", 3, None]},
        ],
        "hunter22": True,
    }
    clean = redact(report, ["hunter22", ""])
    text = repr(clean)
    assert "tok3n" not in text and "bob" not in text and "hunter22" not in text
    assert "https://***:***@pypi.corp.example/simple" in clean["checks"][0]["evidence"]
    assert clean["checks"][1]["evidence"][1:] == [3, None]
    assert report["checks"][0]["evidence"].startswith("Looking in indexes: https://bob:")  # input untouched


def test_plain_text_and_urls_without_credentials_are_kept():
    report = {"evidence": "see https://pypi.org/simple and user@example.com, ratio 3:4"}
    assert redact(report) == report
