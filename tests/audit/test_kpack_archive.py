"""The KPAK reader on archives written by the upstream tool (``none`` and ``zstd-per-kernel``).

Cross-checked against the upstream reader (``rocm_kpack.kpack.PackedKernelArchive``, run under
Python >= 3.12) and against clang-offload-bundler-19's unbundling of the original library.
Damaged copies (truncated, TOC offset past EOF, TOC not msgpack, corrupt zstd frame, key
without blob, decompression bomb): one finding each, no exception, bounded memory.
"""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
from pathlib import Path

import msgpack
import pytest
import zstandard

from rocstack.audit.gpu import check_code_objects
from rocstack.audit.kpack_archive import ArchiveLimits, iter_code_objects, open_archive, read_blob
from rocstack.audit.report import AuditReport

from audit_helpers import need_tool, run
from kpack_fixtures import kbuild  # noqa: F401  (fixture)

ARCHIVES = ["hip_lib/hip_lib_gfx90a/lib/.kpack/hip_lib_gfx90a.kpack",
            "hip_lib/hip_lib_gfx1030/lib/.kpack/hip_lib_gfx1030.kpack",
            "torch_xnack/torch_gfx90a:xnack-/torch/.kpack/torch_gfx90a:xnack-.kpack",
            "blas_lib/blas_lib_gfx908/_rocm_sdk_libraries/.kpack/blas_lib_gfx908.kpack"]


def archive_path(kbuild, rel: str, compression: str = "none") -> Path:
    artifact, rest = rel.split("/", 1)
    return kbuild.split(artifact, compression) / rest


@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("rel", ARCHIVES)
def test_archive_reads_the_same_as_the_upstream_reader(kbuild, rel, compression):
    path = archive_path(kbuild, rel, compression)
    archive = open_archive(path)
    assert archive.usable and archive.findings == []
    assert archive.scheme == ("none" if compression == "none" else "zstd-per-kernel")
    upstream = kbuild.upstream_read(path)
    assert (archive.group_name, archive.gfx_arch_family, list(archive.gfx_arches)) == \
        (upstream["group_name"], upstream["gfx_arch_family"], upstream["gfx_arches"])
    ours = {}
    for entry in archive.entries:
        ours.setdefault(entry.key, {})[entry.arch] = hashlib.sha256(read_blob(archive, entry)).hexdigest()
    assert ours == upstream["kernels"]
    decoded = list(iter_code_objects(archive))
    assert [d.finding for d in decoded] == [None] * len(archive.entries)
    for item in decoded:  # the arch the TOC files it under is the code object's own target
        assert item.code_object.processor == item.entry.arch.split(":")[0]
        assert item.code_object.target_id == item.entry.arch


def test_archive_blob_is_the_code_object_clang_offload_bundler_unbundles(kbuild, tmp_path):
    """The rdc library has one bundle: its gfx90a entry, unbundled by clang-offload-bundler-19 from
    the library as compiled, is byte for byte the archive's ``lib/librdc.so#0`` blob."""
    need_tool("clang-offload-bundler-19", "objcopy")
    fat = tmp_path / "fat.bin"
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(kbuild.built / "librdc.so"), str(fat)])
    out = tmp_path / "gfx90a.co"
    run(["clang-offload-bundler-19", "--unbundle", "--type=o", f"--input={fat}",
         "--targets=hipv4-amdgcn-amd-amdhsa--gfx90a", f"--output={out}"])
    for compression in ("none", "zstd"):
        archive = open_archive(archive_path(kbuild, ARCHIVES[0], compression))
        entry = next(e for e in archive.entries if e.key == "lib/librdc.so#0")
        assert read_blob(archive, entry) == out.read_bytes()


def test_archive_code_objects_go_through_the_resource_audit(kbuild):
    archive = open_archive(archive_path(kbuild, ARCHIVES[0], "zstd"))
    objects = [item.code_object for item in iter_code_objects(archive)]
    names = {k.name for obj in objects for k in obj.kernels}
    assert {"_Z5scalePffi", "_Z3addPfPKfi", "_Z14gather_privatePfPKii"} <= names
    report = AuditReport("/", "default", ["gfx90a"])
    check_code_objects(report, "hip_lib_gfx90a.kpack", objects)
    assert [(f.severity, "gather_private" in f.evidence) for f in report.findings] == [("warning", True)]
    assert "scratch" in report.findings[0].message


# --- damaged archives: one finding each --------------------------------------------------

def damaged(kbuild, tmp_path, compression: str, edit) -> Path:
    src = archive_path(kbuild, ARCHIVES[0], compression)
    data = bytearray(src.read_bytes())
    toc_offset = struct.unpack_from("<Q", data, 8)[0]
    data = edit(data, toc_offset)
    out = tmp_path / src.name
    out.write_bytes(bytes(data))
    return out


def rewrite_toc(data: bytearray, toc_offset: int, change) -> bytearray:
    toc = msgpack.unpackb(bytes(data[toc_offset:]), raw=False)
    change(toc)
    return data[:toc_offset] + msgpack.packb(toc, use_bin_type=True)


def findings_of(path: Path, limits: ArchiveLimits = ArchiveLimits()):
    archive = open_archive(path, limits=limits)
    decoded = list(iter_code_objects(archive, limits))
    return archive, decoded, archive.findings


def add_key_without_blob(toc: dict) -> None:
    count = len(toc["blobs"]) if "blobs" in toc else sum(len(a) for a in toc["toc"].values())
    toc["toc"]["lib/libghost.so#0"] = {"gfx90a": {"type": "hsaco", "ordinal": count, "original_size": 100}}


CASES = {
    "truncated": ("none", lambda d, toc: d[:toc + (len(d) - toc) // 2], "ends mid-object"),
    "toc offset past EOF": ("none", lambda d, toc: d[:8] + struct.pack("<Q", len(d) + 4096) + d[16:],
                            "outside the"),
    "toc not msgpack": ("none", lambda d, toc: d[:toc] + b"\xc1" * (len(d) - toc), "not valid msgpack"),
    "corrupt zstd frame": ("zstd", lambda d, toc: d[:64 + 8 + 20] + b"\xff" * 40 + d[64 + 8 + 60:],
                           "zstd frame #0"),
    "key without blob (none)": ("none", lambda d, toc: rewrite_toc(d, toc, add_key_without_blob),
                                "key without blob"),
    "key without blob (zstd)": ("zstd", lambda d, toc: rewrite_toc(d, toc, add_key_without_blob),
                                "key without blob"),
    "not an archive": ("none", lambda d, toc: b"\x7fELF" + d[4:], "not a kpack archive"),
    "empty": ("none", lambda d, toc: bytearray(), "truncated"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_archive_is_one_finding(kbuild, tmp_path, case):
    compression, edit, words = CASES[case]
    path = damaged(kbuild, tmp_path, compression, edit)
    _archive, decoded, findings = findings_of(path)
    assert [(f.severity, f.kind) for f in findings] == [("error", "kpack-archive")], findings
    assert words in findings[0].message and findings[0].hint
    assert all(d.finding is None or d.finding is findings[0] for d in decoded)


def test_archive_read_is_bounded_by_its_toc_against_a_decompression_bomb(kbuild, tmp_path):
    """Frame #0 replaced by 256 MiB of zeros compressed to a few KiB; the TOC still says 4480 bytes."""
    compressor = zstandard.ZstdCompressor().compressobj()
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 64 << 10

    def swap_frame(data: bytearray, toc_offset: int) -> bytearray:
        toc = msgpack.unpackb(bytes(data[toc_offset:]), raw=False)
        start = toc["zstd_offset"]
        (old,) = struct.unpack_from("<I", data, start + 4)
        region = data[start:start + 8] + data[start + 8 + old:toc_offset]
        region[4:8] = struct.pack("<I", len(bomb))
        region = region[:8] + bomb + region[8:]
        toc["zstd_size"] = len(region)
        out = data[:start] + region
        struct.pack_into("<Q", out, 8, len(out))  # the TOC follows the region
        return out + msgpack.packb(toc, use_bin_type=True)

    path = damaged(kbuild, tmp_path, "zstd", swap_frame)
    tracemalloc.start()
    try:
        _archive, decoded, findings = findings_of(path)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [f.message for f in findings] == [findings[0].message] and "zstd frame #0" in findings[0].message
    assert "the TOC says" in findings[0].message or "over the" in findings[0].message
    assert sum(d.code_object is not None for d in decoded) == len(decoded) - 1  # the others still decode
    assert peak < 16 << 20, f"peak {peak} bytes"
    # a limit below what the TOC declares refuses before decompressing anything
    _archive, _decoded, findings = findings_of(path, ArchiveLimits(max_code_object_bytes=1024))
    assert all("over the 1024-byte limit" in f.message for f in findings)
