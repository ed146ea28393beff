"""Every offload bundle in a byte range (a ``.hip_fatbin`` section, a standalone bundle file), plain or compressed.

The walk over both formats sits above :mod:`rocstack.audit.fatbin` (the bundle model and the
plain format) and :mod:`rocstack.audit.ccob` (the compressed one), so neither imports the other's
user. Each bundle is read, handed out, and its pages given back before the next one.
"""

from __future__ import annotations

from typing import Iterator

from rocstack.audit.ccob import parse_compressed
from rocstack.audit.fatbin import (
    DEFAULT_MAX_UNCOMPRESSED,
    Bundle,
    BundleError,
    _next_magic,
    _plain_objects,
    parse_plain,
    release,
)
from rocstack.audit.magic import CCOB_MAGIC


def iter_bundles(buf, start: int, size: int, max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
                 verify_hash: bool = False) -> Iterator[Bundle]:
    """Yield every bundle in ``buf[start:start+size]``; read each one's code objects before the next.

    Raises BundleError at the first bundle that cannot be trusted; bundles before
    it have been yielded already.
    """
    end = start + size
    pos = start
    found = 0
    while pos < end:
        at = _next_magic(buf, pos, end)
        if at < 0:
            if found == 0:
                raise BundleError("no offload bundle (neither __CLANG_OFFLOAD_BUNDLE__ nor CCOB) in the section")
            return
        if buf[at:at + 4] == CCOB_MAGIC:
            bundle = parse_compressed(buf, at, end, max_uncompressed, verify_hash)
        else:
            entries, length = parse_plain(buf, at, end)
            bundle = Bundle(at, length, None, entries, _plain_objects(buf, at, entries))
        bundle.offset = at - start
        found += 1
        yield bundle
        release(buf, at, bundle.stored_size)
        pos = at + max(bundle.stored_size, 1)
