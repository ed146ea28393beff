"""Checks 5 and 6 on real HIP fat binaries (hipcc), compressed bundles (clang-offload-bundler-19) and damage."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
import zstandard

from rocstack.arches import parse_arch_list
from rocstack.audit import AuditLimits, AuditPolicy, run_audit
from rocstack.audit.bundles import iter_bundles
from rocstack.audit.fatbin import PLAIN_MAGIC, BundleError, parse_plain

from audit_helpers import llvm_notes, need_tool, run


def ccob(payload: bytes, version: int, method: str) -> bytes:
    """A compressed offload bundle laid out like clang's OffloadBundler writes it (v1/v2/v3)."""
    data = zlib.compress(payload, 0 if method == "zlib-stored" else 6) if method.startswith("zlib") else \
        zstandard.ZstdCompressor().compress(payload)
    code = 1 if method == "zstd" else 0
    digest = int.from_bytes(hashlib.md5(payload).digest()[:8], "little")
    if version == 1:
        return struct.pack("<4sHHIQ", b"CCOB", 1, code, len(payload), digest) + data
    if version == 2:
        return struct.pack("<4sHHIIQ", b"CCOB", 2, code, 24 + len(data), len(payload), digest) + data
    return struct.pack("<4sHHQQQ", b"CCOB", 3, code, 32 + len(data), len(payload), digest) + data


def plain_bundle(entries: list[tuple[str, bytes]]) -> bytes:
    header_size = 32 + sum(24 + len(i) for i, _ in entries)
    offset, table, blobs = header_size, b"", b""
    for entry_id, blob in entries:
        table += struct.pack("<QQQ", offset if blob else 0, len(blob), len(entry_id)) + entry_id.encode()
        offset += len(blob)
        blobs += blob
    return PLAIN_MAGIC + struct.pack("<Q", len(entries)) + table + blobs


def lib_with_fatbin(builder, name: str, section: bytes):
    """A g++ shared library whose .hip_fatbin holds ``section`` (objcopy --add-section)."""
    need_tool("objcopy")
    lib = builder.lib(name, "int f(void){return 0;}\n", lang="c")
    blob = lib.parent / (name + ".fatbin")
    blob.write_bytes(section)
    run(["objcopy", "--add-section", f".hip_fatbin={blob}", str(lib)])
    return lib


def test_hipcc_fat_binary_matches_llvm_tools(hip_fatbin_lib, hip_bundle_parts):
    report = run_audit([hip_fatbin_lib])
    summary = report.files[0]
    ids = [e["id"] for b in summary.fatbin["bundles"] for e in b["entries"]]
    assert sorted(ids) == sorted(hip_bundle_parts["ids"])
    assert summary.fatbin["targets"] == ["gfx1030", "gfx90a"]
    by_target = {c.target_id: c for c in summary.code_objects}
    for entry, path in hip_bundle_parts["objects"].items():
        target = entry.rsplit("-", 1)[-1]
        notes = llvm_notes(path)
        ours = {k.name: k for k in by_target[target].kernels}
        assert set(ours) == {k[".name"] for k in notes["amdhsa.kernels"]}
        for kernel in notes["amdhsa.kernels"]:
            mine = ours[kernel[".name"]]
            assert (mine.vgprs, mine.sgprs, mine.lds_bytes, mine.wavefront_size, mine.scratch_bytes) == (
                kernel[".vgpr_count"], kernel[".sgpr_count"], kernel[".group_segment_fixed_size"],
                kernel[".wavefront_size"], kernel[".private_segment_fixed_size"])
        assert by_target[target].code_object_version == notes["amdhsa.version"][1] + 3  # v1.1 -> COv4
    big = {k.name: k for k in by_target["gfx90a"].kernels}["_Z7big_ldsPf"]
    assert big.lds_bytes == 32768 and big.occupancy == 8


def test_arch_coverage_and_hip_error_named(hip_fatbin_lib):
    covered = run_audit([hip_fatbin_lib], targets=parse_arch_list("gfx90a,gfx1030,gfx90a:xnack+"))
    assert not [f for f in covered.findings if f.check == "arch-coverage"], covered.findings
    missing = run_audit([hip_fatbin_lib], targets=parse_arch_list("gfx90a,gfx942"))
    [finding] = [f for f in missing.findings if f.check == "arch-coverage"]
    assert "gfx942" in finding.message and "hipErrorNoBinaryForGpu" in finding.message
    assert "gfx1030, gfx90a" in finding.evidence and missing.exit_code == 1


def test_clang_offload_bundler_compressed_bundle(builder, hip_bundle_parts, tmp_path):
    need_tool("clang-offload-bundler-19")
    entries = [e for e in hip_bundle_parts["ids"] if not e.startswith("host-")]
    empty = tmp_path / "host.o"
    empty.write_bytes(b"")
    out = tmp_path / "ccob.bin"
    run(["clang-offload-bundler-19", "--type=o", "--compress",
         "--targets=" + ",".join(["host-x86_64-unknown-linux", *entries]), f"--input={empty}",
         *[f"--input={hip_bundle_parts['objects'][e]}" for e in entries], f"--output={out}"])
    assert out.read_bytes()[:4] == b"CCOB"
    lib = lib_with_fatbin(builder, "libccob.so", out.read_bytes())
    report = run_audit([lib], targets=parse_arch_list("gfx90a"))
    [bundle] = report.files[0].fatbin["bundles"]
    assert bundle["compression"]["method"] == "zstd" and bundle["compression"]["version"] >= 2
    assert report.files[0].fatbin["targets"] == ["gfx1030", "gfx90a"]
    assert sum(len(c.kernels) for c in report.files[0].code_objects) == 4
    assert report.exit_code == 0, report.findings


def test_many_bundles_every_ccob_version_and_method(builder, hip_bundle_parts):
    plain = hip_bundle_parts["fat"].read_bytes()
    entries, length = parse_plain(plain, 0, len(plain))
    plain = plain[:length]

    def pad(blob: bytes) -> bytes:
        return blob + b"\0" * (-len(blob) % 4096)

    # a zero-size entry whose id holds "CCOB": a stored-zlib v2 payload then contains the magic, and only
    # bounding the bundle by its total-size field keeps the parser from cutting it there
    tricky = plain_bundle([("host-x86_64-unknown-linux--", b""), ("hip-CCOB-marker", b"")]
                          + [(e.id, plain[e.offset:e.offset + e.size]) for e in entries if e.size])
    section = (pad(ccob(plain, 3, "zstd")) + pad(plain) + pad(ccob(plain, 1, "zlib"))
               + ccob(tricky, 2, "zlib-stored") + ccob(plain, 2, "zstd"))
    lib = lib_with_fatbin(builder, "libmany.so", section)
    report = run_audit([lib])
    bundles = report.files[0].fatbin["bundles"]
    assert [(b["compression"] or {}).get("version") for b in bundles] == [3, None, 1, 2, 2]
    assert [(b["compression"] or {}).get("method") for b in bundles] == ["zstd", None, "zlib", "zlib", "zstd"]
    assert len(report.files[0].code_objects) == 10
    assert report.exit_code == 0, report.findings


@pytest.mark.parametrize("damage, expected", [
    (lambda b: b[: len(b) // 2], "past the end"),
    (lambda b: b[:24] + struct.pack("<Q", 1 << 40) + b[32:], "claims 1099511627776 entries"),
    (lambda b: b"JUNK" * 8, "no offload bundle"),
])
def test_damaged_plain_bundle_is_a_finding(builder, hip_bundle_parts, damage, expected):
    lib = lib_with_fatbin(builder, "libdamaged.so", damage(hip_bundle_parts["fat"].read_bytes()))
    report = run_audit([lib])
    assert any(f.check == "hip-fatbin" and f.severity == "error" and expected in f.message
               for f in report.findings), report.findings


def test_corrupt_and_lying_compressed_bundles(builder, hip_bundle_parts):
    plain = hip_bundle_parts["fat"].read_bytes()
    good = ccob(plain, 3, "zstd")
    corrupt = good[:32] + bytes(b ^ 0x5A for b in good[32:64]) + good[64:]
    too_long = good[:8] + struct.pack("<Q", len(good) + 4096) + good[16:]
    bomb_payload = zstandard.ZstdCompressor().compress(b"\0" * (64 << 20))
    bomb = struct.pack("<4sHHQQQ", b"CCOB", 3, 1, 32 + len(bomb_payload), 100, 0) + bomb_payload
    huge = struct.pack("<4sHHQQQ", b"CCOB", 3, 1, 32 + len(bomb_payload), 1 << 40, 0) + bomb_payload
    wrong_hash = good[:24] + b"\0" * 8 + good[32:]
    # the bomb's header says 100 bytes: at most 101 are inflated, and they hold no bundle magic
    cases = {"wrong_hash": (wrong_hash, "MD5 hash does not match"), "corrupt": (corrupt, "corrupt zstd stream"),
             "too_long": (too_long, "claims total size"), "bomb": (bomb, "does not decompress to an offload bundle"),
             "huge": (huge, "over the")}
    for name, (blob, expected) in cases.items():
        lib = lib_with_fatbin(builder, f"lib{name}.so", blob)
        report = run_audit([lib], limits=AuditLimits(max_bundle_bytes=16 << 20, verify_bundle_hashes=True))
        assert any(f.check == "hip-fatbin" and expected in f.message for f in report.findings), (name, report.findings)
    # by default the hash is not computed (clang checks it only in verbose mode): no finding, hash_ok unknown
    unchecked = run_audit([lib_with_fatbin(builder, "libhash.so", wrong_hash)])
    assert not [f for f in unchecked.findings if "MD5" in f.message]
    assert unchecked.files[0].fatbin["bundles"][0]["compression"]["hash_ok"] is None


def test_bundle_iteration_stops_at_the_first_bad_bundle():
    good = plain_bundle([("host-x86_64-unknown-linux--", b"")])
    data = good + b"\0" * 8 + PLAIN_MAGIC + b"\xff" * 8
    seen = []
    with pytest.raises(BundleError):
        for bundle in iter_bundles(data, 0, len(data)):
            seen.append(bundle)
    assert len(seen) == 1


def test_gpu_extension_without_fatbin_is_a_cpu_only_build(builder, hip_fatbin_lib):
    cpu_only = builder.lib("_C.so", "int f(void){return 0;}\n", lang="c", subdir="xformers")
    policy = AuditPolicy(gpu_extensions=["xformers/_C.so", "xformers/_missing.so"])
    report = run_audit([cpu_only.parent.parent], policy=policy)
    messages = [f.message for f in report.findings if f.check == "gpu-extension"]
    assert any("built CPU-only" in m for m in messages)
    assert any("xformers/_missing.so is not among the audited files" in m for m in messages)
    gpu = run_audit([hip_fatbin_lib], policy=AuditPolicy(gpu_extensions=["libk.so"]))
    assert not [f for f in gpu.findings if f.check == "gpu-extension"]


def test_large_decompressed_code_objects_are_read_up_to_their_notes(builder, hip_bundle_parts, monkeypatch):
    """Past SPILL_BYTES only a code object's headers and PT_NOTE metadata are kept: same results."""
    plain = hip_bundle_parts["fat"].read_bytes()
    lib = lib_with_fatbin(builder, "libspill.so", ccob(plain, 3, "zstd") + b"\0" * 7 + ccob(plain, 2, "zlib"))
    in_memory = run_audit([lib])
    monkeypatch.setattr("rocstack.audit.ccob.SPILL_BYTES", 1024)
    spilled = run_audit([lib])
    assert spilled.exit_code == in_memory.exit_code == 0, spilled.findings
    assert spilled.files[0].to_dict() == in_memory.files[0].to_dict()
    assert sum(len(c.kernels) for c in spilled.files[0].code_objects) == 8


def test_xnack_specific_code_objects_cover_only_matching_devices(builder, hip_bundle_parts):
    """A gfx90a:xnack- code object loads on a default MI200 (xnack off) but not on one running with xnack on."""
    [gfx90a] = [p for e, p in hip_bundle_parts["objects"].items() if e.endswith("gfx90a")]
    data = bytearray(gfx90a.read_bytes())
    flags = struct.unpack_from("<I", data, 0x30)[0]
    assert flags & 0x300 == 0x100  # hipcc built it xnack "any"
    struct.pack_into("<I", data, 0x30, (flags & ~0x300) | 0x200)  # EF_AMDGPU_FEATURE_XNACK_OFF_V4
    section = plain_bundle([("host-x86_64-unknown-linux--", b""),
                            ("hipv4-amdgcn-amd-amdhsa--gfx90a:xnack-", bytes(data))])
    lib = lib_with_fatbin(builder, "libxnack.so", section)
    default = run_audit([lib], targets=parse_arch_list("gfx90a"))
    assert default.exit_code == 0 and default.files[0].code_objects[0].target_id == "gfx90a:xnack-"
    xnack_on = run_audit([lib], targets=parse_arch_list("gfx90a:xnack+"))
    [finding] = [f for f in xnack_on.findings if f.check == "arch-coverage"]
    assert "gfx90a:xnack+" in finding.message and "need other xnack/sramecc settings" in finding.message


def test_generic_code_objects_cover_their_member_arches(builder, hip_bundle_parts):
    [gfx90a] = [p for e, p in hip_bundle_parts["objects"].items() if e.endswith("gfx90a")]
    data = bytearray(gfx90a.read_bytes())
    flags = struct.unpack_from("<I", data, 0x30)[0]
    # EF_AMDGPU_MACH_AMDGCN_GFX9_4_GENERIC, generic version 1, in a code object v6 (EI_ABIVERSION 4)
    struct.pack_into("<I", data, 0x30, (flags & ~0xFF000000 & ~0xFF) | 0x5F | 1 << 24)
    data[8] = 4
    section = plain_bundle([("host-x86_64-unknown-linux--", b""),
                            ("hipv4-amdgcn-amd-amdhsa--gfx9-4-generic", bytes(data))])
    lib = lib_with_fatbin(builder, "libgeneric.so", section)
    report = run_audit([lib], targets=parse_arch_list("gfx942,gfx950,gfx90a"))
    coverage = {(f.severity, next(a for a in ("gfx942", "gfx950", "gfx90a") if f.message.startswith(a)
                                  or f"for {a} " in f.message)) for f in report.findings if f.check == "arch-coverage"}
    assert coverage == {("info", "gfx942"), ("info", "gfx950"), ("error", "gfx90a")}
    [obj] = report.files[0].code_objects
    assert obj.processor == "gfx9-4-generic" and obj.generic_version == 1 and obj.code_object_version == 6
    cells = report.coverage.to_dict()["rows"][0]["cells"]
    assert cells["gfx942"] == {"status": "covered", "sources": ["fatbin"], "generic": ["gfx9-4-generic"]}
    assert cells["gfx90a"]["status"] == "missing"
