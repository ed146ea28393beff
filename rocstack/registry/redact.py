"""Scrub credentials out of JSON before it is signed and published.

A validation report is embedded in the attestation, which anyone with pull access
reads. Reports carry free-text evidence (tool output), which may quote an index URL
with ``user:password@`` in it or a secret the pushing process knows; both are
replaced before signing, so they never reach the registry.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]+@")
MASK = "***"


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with URL credentials and each of ``secrets`` masked in every string."""
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(item: Any) -> Any:
        if isinstance(item, str):
            text = _URL_USERINFO.sub(rf"\1{MASK}:{MASK}@", item)
            for secret in known:
                text = text.replace(secret, MASK)
            return text
        if isinstance(item, dict):
            return {scrub(k): scrub(v) for k, v in item.items()}
        if isinstance(item, list):
            return [scrub(v) for v in item]
        return item

    return scrub(value)
