"""A deterministic mutator: one input from (seeds, random.Random), with a description of what it did.

Byte-level operations (bit flips, byte overwrites, truncation, extension, chunk deletion and
duplication, splicing with another seed), integer-field overwrites at the offsets the seed's
format names (:mod:`fuzz_layouts`: header fields, counts, offsets, sizes; little- or
big-endian), length fields set to huge values, and tree mutations of msgpack / JSON regions
(a node's type swapped, keys dropped or added, numbers pushed to their limits, deep nesting,
non-string map keys). The same ``random.Random`` state always gives the same bytes and the
same description, so an input is reproduced from (base seed, target, index) alone.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import msgpack

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x40)
MAX_STACK = 4  # operations stacked on one input
MAX_GROWTH = 1 << 16  # bytes one operation may add


@dataclass(frozen=True)
class Field:
    offset: int
    width: int  # 1, 2, 4 or 8 bytes
    big_endian: bool = False
    name: str = ""


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    kind: str  # "msgpack" | "json" | "bytes" (a hot range: byte operations are aimed into it)
    resizable: bool = True  # a tree region may change length (it ends the file, or the format has no offsets after it)


@dataclass
class Seed:
    name: str
    data: bytes
    fields: list[Field] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)


def mutate(seed: Seed, others: list[Seed], rng: random.Random) -> tuple[bytes, list[str]]:
    """One mutated input from ``seed``, and one line per operation applied."""
    data = bytearray(seed.data)
    steps: list[str] = []
    trees = [r for r in seed.regions if r.kind in ("msgpack", "json")]
    for _ in range(rng.randint(1, MAX_STACK)):
        roll = rng.random()
        if trees and roll < 0.45 and len(data) == len(seed.data):  # regions are known only for the seed's layout
            data, step = _tree(data, rng.choice(trees), rng)
        elif seed.fields and roll < 0.75 and len(data) == len(seed.data):
            step = _field(data, rng.choice(seed.fields), rng)
        else:
            hot = [r for r in seed.regions if r.end <= len(data)]
            step = _bytes(data, rng, others, hot)
        steps.append(step)
    return bytes(data), steps


# -- byte operations ---------------------------------------------------------------------------------

def _span(data: bytearray, rng: random.Random, hot: list[Region]) -> tuple[int, int]:
    """Where a byte operation aims: half the time inside a hot range of the seed's format."""
    if hot and rng.random() < 0.5:
        region = rng.choice(hot)
        if region.end > region.start:
            return region.start, region.end
    return 0, len(data)


def _bytes(data: bytearray, rng: random.Random, others: list[Seed], hot: list[Region]) -> str:
    ops = ["flip", "overwrite", "truncate", "extend", "delete", "duplicate", "splice", "insert"]
    op = rng.choice(ops)
    if not data and op not in ("extend", "splice", "insert"):
        op = "extend"
    lo, hi = _span(data, rng, hot)
    if op == "flip":
        bits = rng.randint(1, 8)
        where = [rng.randrange(lo, hi) * 8 + rng.randrange(8) for _ in range(bits)]
        for bit in where:
            data[bit // 8] ^= 1 << (bit % 8)
        return f"flip bits {', '.join(hex(b) for b in where)}"
    if op == "overwrite":
        count = rng.randint(1, 16)
        at = rng.randrange(lo, hi)
        values = bytes(rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256) for _ in range(count))
        data[at:at + count] = values[:len(data) - at]
        return f"overwrite {min(count, len(data) - at)} bytes at {at:#x} with {values[:len(data) - at].hex()}"
    if op == "truncate":
        at = rng.randrange(lo, hi) if rng.random() < 0.7 else rng.randrange(len(data))
        del data[at:]
        return f"truncate at {at:#x}"
    if op == "extend":
        size = rng.choice((1, 7, 64, 4096, rng.randint(1, MAX_GROWTH)))
        kind = rng.choice(("zeros", "random", "repeat"))
        if kind == "zeros" or not data:
            tail = bytes(size)
        elif kind == "random":
            tail = rng.randbytes(size)
        else:
            start = rng.randrange(len(data))
            chunk = bytes(data[start:start + rng.randint(1, 256)])
            tail = (chunk * (size // len(chunk) + 1))[:size]
        data += tail
        return f"extend by {size} {kind} bytes"
    if op == "delete":
        at = rng.randrange(lo, hi)
        size = rng.randint(1, min(256, len(data) - at))
        del data[at:at + size]
        return f"delete {size} bytes at {at:#x}"
    if op == "duplicate":
        at = rng.randrange(lo, hi)
        size = rng.randint(1, min(1024, len(data) - at))
        data[at:at] = data[at:at + size]
        return f"duplicate {size} bytes at {at:#x}"
    if op == "insert":
        at = rng.randrange(len(data) + 1)
        value = rng.randbytes(rng.randint(1, 32)) if rng.random() < 0.5 else bytes([rng.choice(INTERESTING_BYTES)]) * 8
        data[at:at] = value
        return f"insert {value.hex()} at {at:#x}"
    # splice: bytes of another seed of the same target, over or into this one
    donor = rng.choice(others).data if others else bytes(data)
    if not donor:
        return "splice skipped (empty donor)"
    start = rng.randrange(len(donor))
    chunk = donor[start:start + rng.randint(1, 4096)]
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        data[at:at + len(chunk)] = chunk
        return f"splice {len(chunk)} donor bytes from {start:#x} over {at:#x}"
    data[at:at] = chunk
    return f"splice {len(chunk)} donor bytes from {start:#x} into {at:#x}"


# -- integer fields ----------------------------------------------------------------------------------

def interesting_values(current: int, width: int, size: int) -> list[int]:
    """Values that break parsers: limits of the width, off-by-one around the current value and the file size."""
    top = (1 << (8 * width)) - 1
    values = {0, 1, 2, top, top >> 1, (top >> 1) + 1, current + 1, current - 1, current * 2, current >> 1,
              size, size + 1, size - 1, size * 2, 0x1000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
              0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, current ^ (1 << (8 * width - 1))}
    return sorted(v & top for v in values)


def _field(data: bytearray, spot: Field, rng: random.Random) -> str:
    if spot.offset + spot.width > len(data):
        return f"field {spot.name or hex(spot.offset)} skipped (past the end)"
    order = "big" if spot.big_endian else "little"
    current = int.from_bytes(data[spot.offset:spot.offset + spot.width], order)
    if rng.random() < 0.25:  # "length fields set to huge values"
        value = rng.choice(((1 << (8 * spot.width)) - 1, 1 << (8 * spot.width - 1), (1 << (8 * spot.width - 1)) - 1))
    else:
        value = rng.choice(interesting_values(current, spot.width, len(data)))
    data[spot.offset:spot.offset + spot.width] = value.to_bytes(spot.width, order)
    return f"field {spot.name or 'u' + str(8 * spot.width)}@{spot.offset:#x} {current:#x} -> {value:#x}"


# -- tree mutations (msgpack, JSON) ------------------------------------------------------------------

_HUGE_INTS = (0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -(2**63), 2**64 - 1)


def _decode(raw: bytes, kind: str):
    if kind == "msgpack":
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    return json.loads(raw)


def _encode(value, kind: str) -> bytes:
    if kind == "msgpack":
        return msgpack.packb(value, use_bin_type=True)
    return json.dumps(value, allow_nan=True).encode()


def _nodes(root, limit: int = 48):
    """(path, value) of every node down to ``limit`` levels, without recursion."""
    stack = [((), root)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if len(path) >= limit:
            continue
        if isinstance(value, dict):
            stack.extend((path + (key,), child) for key, child in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((path + (index,), child) for index, child in reversed(list(enumerate(value))))


def _get(root, path):
    for step in path:
        root = root[step]
    return root


def _replacement(value, kind: str, rng: random.Random):
    """Another value for a node: another type, a limit, a long or odd string, deep nesting."""
    choices = [None, True, False, rng.choice(_HUGE_INTS), -rng.randint(1, 1000), 1e308, -0.0, float("nan"),
               float("inf"), "", "x" * rng.choice((1, 255, 4096)), "\u0000", "\udcff",
               "gfx" + rng.choice(("942", "90a", "", "zzz", "942:xnack+", "9-4-generic")), [], {}, [value], {"": value}]
    if kind == "msgpack":
        choices += [b"\x00\xff", msgpack.ExtType(rng.randrange(128), b"\x01\x02"), 2**64 - 1]
    if isinstance(value, str) and value:
        at = rng.randrange(len(value))
        choices += [value[:at], value + value, value[:at] + chr(rng.choice((0, 0x7F, 0xE9, 0x10FFFF))) + value[at + 1:]]
    if isinstance(value, int) and not isinstance(value, bool):
        choices += [value + 1, value - 1, value * 4096, -value]
    pick = rng.choice(choices)
    return pick, f"replaced with {_short(pick)}"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _tree_once(root, kind: str, rng: random.Random) -> tuple[object, str]:
    nodes = list(_nodes(root))
    path, value = rng.choice(nodes)
    where = "/".join(str(p) for p in path) or "(root)"
    op = rng.random()
    if isinstance(value, dict) and value and op < 0.25:
        key = rng.choice(list(value))
        del value[key]
        return root, f"{where}: dropped key {_short(key)}"
    if isinstance(value, dict) and op < 0.35:
        key = rng.choice(("type", "value", "offset", "size", "ordinal", "name", ".name", "amdhsa.kernels", "x", "#0"))
        if kind == "msgpack" and rng.random() < 0.3:
            key = rng.choice((0, -1, b"k", (1, 2), 2**64 - 1))  # non-string keys; a tuple packs as an array key
        value[key], what = _replacement(None, kind, rng)
        return root, f"{where}: added key {_short(key)} {what}"
    if isinstance(value, list) and value and op < 0.45:
        index = rng.randrange(len(value))
        if rng.random() < 0.5:
            del value[index]
            return root, f"{where}: dropped item {index}"
        value.extend([value[index]] * rng.choice((1, 100)))
        return root, f"{where}: repeated item {index}"
    new, what = _replacement(value, kind, rng)
    if not path:
        return new, f"(root) {what}"
    _get(root, path[:-1])[path[-1]] = new
    return root, f"{where}: {what}"


_SENTINEL = "\u0000rocstack-fuzz-nest\u0000"


def _nest(root, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """The tree encoded with one node wrapped in thousands of one-item arrays (written as bytes: an
    encoder would refuse the depth that the readers must survive)."""
    path, value = rng.choice(list(_nodes(root)))
    depth = rng.choice((100, 257, 1100, 20000, 200000))
    inner = _encode(value, kind)
    wrapped = (b"[" * depth + inner + b"]" * depth) if kind == "json" else (b"\x91" * depth + inner)
    if not path:
        return wrapped, f"(root) nested {depth} deep"
    _get(root, path[:-1])[path[-1]] = _SENTINEL
    encoded = _encode(root, kind)
    return encoded.replace(_encode(_SENTINEL, kind), wrapped, 1), f"{'/'.join(map(str, path))}: nested {depth} deep"


def _tree(data: bytearray, region: Region, rng: random.Random) -> tuple[bytearray, str]:
    raw = bytes(data[region.start:region.end])
    try:
        root = _decode(raw, region.kind)
    except Exception:  # noqa: BLE001 - a region that no longer decodes gets a byte operation instead
        return data, _bytes(data, rng, [], [region])
    steps = []
    try:
        for _ in range(rng.randint(1, 3)):
            root, step = _tree_once(root, region.kind, rng)
            steps.append(step)
        if region.resizable and rng.random() < 0.1:
            encoded, step = _nest(root, region.kind, rng)
            steps.append(step)
        else:
            encoded = _encode(root, region.kind)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        return data, f"{region.kind} tree mutation not encodable ({type(exc).__name__}): {'; '.join(steps)}"
    if not region.resizable:
        if len(encoded) > len(raw):
            return data, f"{region.kind} tree mutation too long for its {len(raw)}-byte region: {'; '.join(steps)}"
        encoded += raw[len(encoded):]  # keep the region's length: what follows keeps its offset
    out = data[:region.start] + encoded + data[region.end:]
    return out, f"{region.kind} at {region.start:#x}: {'; '.join(steps)}"
