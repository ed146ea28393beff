"""Why an attestation does not let an image through, and the canonical JSON it is hashed in.

Shared by the statement, DSSE/bundle and legacy-format readers, so each can refuse
without importing the others.
"""

from __future__ import annotations

import json
from typing import Any

from rocstack.errors import RocstackError


class VerificationError(RocstackError):
    """An attestation that does not let an image through; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str, hint: str | None = None, status: str | None = None):
        super().__init__(message, hint, exit_code=1)
        self.reason = reason
        self.status = status or reason  # what a listing shows: the verdict or level when that is the problem


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
