"""What a file is, from its first bytes (never from its name).

A ROCm tree hides device code behind every extension: ``.co`` files that are
compressed offload bundles, ``.hsaco`` files that are plain bundles, ``.so``
files that are text linker scripts. The audit decides by content; names only
let it skip files that are plainly not binaries (sources, text, Python).
"""

from __future__ import annotations

import os
import struct

from rocstack.audit.elf import ELF_MAGIC, EM_AMDGPU, EM_X86_64

PLAIN_MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"  # clang OffloadBundler: an uncompressed offload bundle
CCOB_MAGIC = b"CCOB"  # a compressed offload bundle
FATBIN_SECTION = ".hip_fatbin"  # where a host library carries its offload bundles
SQLITE_MAGIC = b"SQLite format 3\x00"
KPACK_MAGIC = b"KPAK"
HEAD_BYTES = 64

ELF_HOST, ELF_AMDGPU, ELF_OTHER = "elf", "code-object", "elf-other"
BUNDLE, COMPRESSED_BUNDLE = "offload-bundle", "compressed-bundle"
SQLITE, KPACK, LD_SCRIPT, UNKNOWN = "sqlite", "kpack", "linker-script", "unknown"

# Extensions that never hold device code or a shared library: not even opened during a walk.
TEXT_SUFFIXES = frozenset((
    ".py", ".pyc", ".pyi", ".pyx", ".pxd", ".h", ".hpp", ".hh", ".cuh", ".c", ".cc", ".cpp", ".cu", ".hip",
    ".inc", ".inl", ".txt", ".md", ".rst", ".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".csv", ".html",
    ".js", ".css", ".svg", ".png", ".jpg", ".gif", ".cmake", ".in", ".sh", ".typed", ".pem", ".mo", ".po",
))


def sniff(head: bytes) -> str:
    """Kind of content from its first bytes (``HEAD_BYTES`` are enough)."""
    if head.startswith(ELF_MAGIC):
        if len(head) >= 20:
            (machine,) = struct.unpack_from("<H", head, 18)
            if machine == EM_AMDGPU:
                return ELF_AMDGPU
            if machine != EM_X86_64:
                return ELF_OTHER
        return ELF_HOST
    if head.startswith(PLAIN_MAGIC):
        return BUNDLE
    if head.startswith(CCOB_MAGIC):
        return COMPRESSED_BUNDLE
    if head.startswith(SQLITE_MAGIC):
        return SQLITE
    if head.startswith(KPACK_MAGIC):
        return KPACK
    text = head.lstrip()
    if text.startswith((b"/* GNU ld script", b"INPUT(", b"GROUP(", b"OUTPUT_FORMAT(")):
        return LD_SCRIPT
    return UNKNOWN


def sniff_path(path: str | os.PathLike) -> str:
    """Kind of a file; OSError propagates (the caller reports it)."""
    with open(path, "rb") as handle:
        return sniff(handle.read(HEAD_BYTES))


def is_device_code(kind: str) -> bool:
    return kind in (ELF_AMDGPU, BUNDLE, COMPRESSED_BUNDLE)


def worth_sniffing(name: str) -> bool:
    """False for names that are plainly sources or text; everything else is opened and sniffed."""
    dot = name.rfind(".")
    return dot < 0 or name[dot:].lower() not in TEXT_SUFFIXES
