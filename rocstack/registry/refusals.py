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


def parse_json(raw: bytes, what: str) -> Any:
    """``raw`` as JSON, or a ``corrupt`` refusal: not UTF-8, not JSON, nested deeper than the decoder
    follows, or holding what :func:`canonical_json` (the bytes signatures and digests cover) cannot
    write: NaN, Infinity, a number out of float range, a lone surrogate escape."""
    try:
        value = json.loads(raw)
        canonical_json(value)
        return value
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at byte {exc.pos}"
    except UnicodeDecodeError as exc:  # json.loads decodes bytes first; this error has no msg/pos
        problem = f"not UTF-8 at byte {exc.start}"
    except UnicodeEncodeError:
        problem = "a string escape that is not Unicode text"
    except ValueError:
        problem = "NaN, Infinity or a number out of range"
    except RecursionError:
        problem = "nested deeper than a JSON reader follows"
    raise VerificationError("corrupt", f"{what} is not valid JSON ({problem})")


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
