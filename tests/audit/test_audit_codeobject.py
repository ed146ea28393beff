"""Check 6 on Triton AOT code objects, plus fuzzing of every parser that reads untrusted bytes."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocstack.arches import get_arch, parse_arch_list
from rocstack.audit import run_audit
from rocstack.audit.codeobject import CodeObject, Kernel, decode_metadata, parse_code_object
from rocstack.audit.elf import ElfError, ElfFile, parse_notes
from rocstack.audit.bundles import iter_bundles
from rocstack.audit.fatbin import CCOB_MAGIC, PLAIN_MAGIC, BundleError
from rocstack.audit.gpu import check_code_objects
from rocstack.audit.report import AuditReport

from audit_helpers import llvm_notes, need_tool, run

ARCHES = ("gfx90a", "gfx942", "gfx950")


@pytest.fixture(scope="module")
def triton_objects(tmp_path_factory) -> dict:
    pytest.importorskip("triton")
    from triton_aot_kernels import compile_hsaco

    folder = tmp_path_factory.mktemp("triton")
    out = {}
    for arch in ARCHES:
        for kernel in ("vector_add", "matmul_tile"):
            path = folder / f"{kernel}_{arch}.hsaco"
            path.write_bytes(compile_hsaco(kernel, arch))
            out[(kernel, arch)] = path
    return out


def test_triton_code_objects_match_llvm_readelf(triton_objects):
    report = run_audit(sorted(triton_objects.values()))
    assert report.exit_code == 0, report.findings
    by_path = {f.path: f for f in report.files}
    for (kernel, arch), path in triton_objects.items():
        summary = by_path[str(path)]
        assert summary.kind == "code-object"
        [obj] = summary.code_objects
        assert obj.processor == arch and obj.mach == get_arch(arch).mach
        notes = llvm_notes(path)
        assert notes["amdhsa.target"].startswith(f"amdgcn-amd-amdhsa--{arch}")
        [theirs] = notes["amdhsa.kernels"]
        [mine] = obj.kernels
        assert mine.name == theirs[".name"] == kernel
        assert (mine.vgprs, mine.agprs, mine.sgprs, mine.wavefront_size) == (
            theirs[".vgpr_count"], theirs.get(".agpr_count"), theirs[".sgpr_count"], theirs[".wavefront_size"])
        assert mine.wavefront_size == 64
        assert mine.occupancy == get_arch(arch).occupancy(mine.vgprs)


def test_standalone_code_object_outside_requested_arches_is_flagged(triton_objects):
    path = triton_objects[("vector_add", "gfx90a")]
    report = run_audit([path], targets=parse_arch_list("gfx942"))
    assert any(f.check == "arch-coverage" and "gfx90a" in f.message for f in report.findings)
    assert not run_audit([path], targets=parse_arch_list("gfx90a")).findings


def test_resource_limits_become_findings():
    def kernel(name, **kw):
        base = dict(vgprs=32, agprs=0, sgprs=16, vgpr_spills=0, sgpr_spills=0, lds_bytes=0, scratch_bytes=0,
                    wavefront_size=64, max_flat_workgroup_size=256, dynamic_stack=False, occupancy=8)
        return Kernel(name=name, **{**base, **kw})

    obj = CodeObject("file", "gfx942", "gfx942", 0x4C, 5, 1000, kernels=[
        kernel("too_much_lds", lds_bytes=96 * 1024), kernel("spills", vgpr_spills=12),
        kernel("scratch", scratch_bytes=256), kernel("recursive", dynamic_stack=True), kernel("fine")])
    gfx950 = CodeObject("file", "gfx950", "gfx950", 0x4F, 5, 1000, kernels=[kernel("big_lds_ok", lds_bytes=96 * 1024)])
    report = AuditReport("/", "default", [])
    check_code_objects(report, "x.co", [obj, gfx950])
    by_severity = {(f.severity, f.message.split(" use")[0].split(" need")[0].split(" spill")[0]) for f in report.findings}
    assert ("error", "1 kernels in 1 targets (gfx942)") in by_severity
    messages = " | ".join(f.message + f.evidence for f in report.findings)
    assert "too_much_lds" in messages and "big_lds_ok" not in messages
    assert "spill registers" in messages and "scratch (private)" in messages and "dynamic stack" in messages
    assert [f.severity for f in report.findings].count("error") == 1


def test_truncated_and_foreign_code_objects(triton_objects, tmp_path):
    data = triton_objects[("vector_add", "gfx942")].read_bytes()
    cut = tmp_path / "cut.hsaco"
    cut.write_bytes(data[: len(data) // 3])
    text = tmp_path / "notes.co"
    text.write_text("not an elf at all")
    report = run_audit([cut, text])
    messages = {f.file: f.message for f in report.findings}
    assert "past the end" in messages[str(cut)] and "not an ELF file" in messages[str(text)]
    assert report.exit_code == 1


def test_bad_metadata_is_a_problem_not_a_crash():
    assert isinstance(decode_metadata(b"\xc1\xc1\xc1"), str)
    assert isinstance(decode_metadata(msgpack.packb([1, 2, 3])), str)
    assert decode_metadata(msgpack.packb({"amdhsa.kernels": []})) == {"amdhsa.kernels": []}


# --- fuzzing: hostile bytes may only ever raise the parser's own error type -------------------------

_FUZZ = settings(max_examples=int(__import__("os").environ.get("ROCSTACK_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=512), st.sampled_from([b"", PLAIN_MAGIC, CCOB_MAGIC + b"\x01\x00",
                                                 CCOB_MAGIC + b"\x02\x00\x01\x00", CCOB_MAGIC + b"\x03\x00\x00\x00"]))
def test_fuzz_bundle_parser(tail, prefix):
    data = prefix + tail
    try:
        for bundle in iter_bundles(data, 0, len(data), max_uncompressed=1 << 20):
            for entry, buf, start, available in bundle.code_objects():
                assert 0 < available <= entry.size and start + available <= len(buf)
    except BundleError:
        pass


@_FUZZ
@given(st.binary(max_size=256), st.sampled_from([4, 8]))
def test_fuzz_note_parser(data, align):
    try:
        for _name, _type, desc in parse_notes(data, align):
            assert len(desc) <= len(data)
    except ElfError:
        pass


@pytest.fixture(scope="module")
def real_code_object(triton_objects) -> bytes:
    return triton_objects[("matmul_tile", "gfx942")].read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=8))
def test_fuzz_code_object_mutations(real_code_object, edits):
    data = bytearray(real_code_object)
    for position, value in edits:
        data[position % len(data)] = value
    try:
        obj = parse_code_object(bytes(data))
        assert isinstance(obj.kernels, list)
    except ElfError:
        pass


@_FUZZ
@given(st.binary(min_size=64, max_size=400))
def test_fuzz_elf_header_and_tables(body):
    data = b"\x7fELF\x02\x01\x01" + body
    try:
        elf = ElfFile(data)
        elf.sections
        elf.dynamic
        elf.version_needs
        if elf.has_dynsym():
            elf.symbols()
    except ElfError:
        pass


def test_section_table_past_eof_is_reported(tmp_path):
    need_tool("gcc")
    src = tmp_path / "x.c"
    src.write_text("int f(void){return 1;}\n")
    lib = tmp_path / "libx.so"
    run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(src)])
    data = bytearray(lib.read_bytes())
    struct.pack_into("<Q", data, 0x28, len(data) + 4096)  # e_shoff past the end of the file
    lib.write_bytes(bytes(data))
    report = run_audit([lib])
    [finding] = [f for f in report.findings if f.check == "input"]
    assert "section header table" in finding.message and "past the end" in finding.message


@pytest.fixture(scope="module")
def real_shared_lib(tmp_path_factory) -> bytes:
    need_tool("g++")
    folder = tmp_path_factory.mktemp("fuzzlib")
    src = folder / "x.cpp"
    src.write_text("#include <string>\n#include <stdexcept>\n"
                   "std::string f(int n) { if (n < 0) throw std::runtime_error(\"neg\"); return std::to_string(n); }\n")
    run(["g++", "-shared", "-fPIC", "-o", str(folder / "libx.so"), str(src)])
    return (folder / "libx.so").read_bytes()


@settings(max_examples=int(__import__("os").environ.get("ROCSTACK_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=6),
       st.booleans())
def test_fuzz_shared_library_mutations(real_shared_lib, edits, in_tables):
    """Byte edits of a real .so (biased to the dynamic tables) may only raise ElfError."""
    data = bytearray(real_shared_lib)
    span = min(len(data), 0x1000) if in_tables else len(data)  # .dynsym/.dynstr/.gnu.version* sit in the first page
    for position, value in edits:
        data[position % span] = value
    try:
        elf = ElfFile(bytes(data))
        elf.dynamic
        elf.version_needs
        elf.version_definitions
        if elf.has_dynsym():
            elf.symbols()
    except ElfError:
        pass


def test_extended_section_numbering(real_shared_lib):
    """gABI: e_shnum 0 / e_shstrndx SHN_XINDEX put the real values in section header 0."""
    data = bytearray(real_shared_lib)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    struct.pack_into("<Q", data, shoff + 0x20, shnum)  # section 0 sh_size = count
    struct.pack_into("<I", data, shoff + 0x28, shstrndx)  # section 0 sh_link = names index
    struct.pack_into("<HH", data, 0x3C, 0, 0xFFFF)
    extended = ElfFile(bytes(data))
    plain = ElfFile(real_shared_lib)
    assert [s.name for s in extended.sections] == [s.name for s in plain.sections]
    assert extended.section(".dynsym") is not None
    struct.pack_into("<Q", data, shoff + 0x20, 1 << 40)
    with pytest.raises(ElfError):
        ElfFile(bytes(data)).sections
