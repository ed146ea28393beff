"""kpack-split host libraries made by the upstream tool: detection, ref, wrappers, ELF integrity.

Cross-checked against readelf (binutils), the upstream ``read_kpack_ref_marker`` and, for the
patchelf case, against what glibc's loader itself reports through ``dl_iterate_phdr``.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rocstack.audit.elf import open_elf
from rocstack.audit.kpack import HIPK_MAGIC, check_integrity, is_split, read_split_library
from rocstack.audit.segments import R_X86_64_RELATIVE, dynamic_relocations

from audit_helpers import run
from kpack_fixtures import kbuild, stock_patchelf  # noqa: F401  (kbuild is a fixture)

SPLIT_LIBS = {  # split output (artifact, path) -> (kernel_name, search path, wrappers, requested co_indexes)
    ("hip_lib", "hip_lib_generic/lib/libk.so"): ("lib/libk.so", ".kpack/hip_lib_@GFXARCH@.kpack", 2, [0, 1]),
    ("hip_lib", "hip_lib_generic/lib/librdc.so"): ("lib/librdc.so", ".kpack/hip_lib_@GFXARCH@.kpack", 2, [0]),
    ("torch", "torch_generic/torch/lib/libtorch_hip.so"):
        ("torch/lib/libtorch_hip.so", "../.kpack/torch_@GFXARCH@.kpack", 2, [0, 1]),
    ("blas_lib", "blas_lib_generic/_rocm_sdk_libraries/lib/libblas_lib.so"):
        ("_rocm_sdk_libraries/lib/libblas_lib.so", "../.kpack/blas_lib_@GFXARCH@.kpack", 2, [0, 1]),
}


def split_lib(kbuild, artifact: str, rel: str):
    mapped, elf = open_elf(kbuild.split(artifact) / rel)
    return mapped, elf


def section_addr(path: Path, name: str) -> int:
    line = next(line for line in run(["readelf", "-SW", str(path)]).splitlines() if f" {name} " in line)
    return int(line.split("]", 1)[1].split()[2], 16)


def readelf_sections(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (type, size) as binutils' readelf prints them."""
    out = {}
    for line in run(["readelf", "-SW", str(path)]).splitlines():
        if "]" in line and line.strip().startswith("["):
            fields = line.split("]", 1)[1].split()
            if len(fields) >= 6 and fields[0].startswith("."):
                out[fields[0]] = (fields[1], int(fields[4], 16))
    return out


@pytest.mark.parametrize("artifact,rel", list(SPLIT_LIBS))
def test_upstream_split_library_is_recognised_with_its_ref_and_wrappers(kbuild, artifact, rel):
    kernel_name, search, wrappers, requested = SPLIT_LIBS[(artifact, rel)]
    path = kbuild.split(artifact) / rel
    mapped, elf = open_elf(path)
    with mapped:
        assert is_split(elf)
        lib = read_split_library(elf, rel)
    assert lib is not None and lib.findings == []
    assert lib.ref.kernel_name == kernel_name and lib.ref.search_paths == (search,)
    assert [w.magic for w in lib.wrappers] == [HIPK_MAGIC] * wrappers
    assert [w.co_index for w in lib.wrappers] == list(range(wrappers))
    assert lib.co_indexes == requested
    assert lib.fatbin_nobits
    # independent readers: binutils' section table, the upstream tool's own marker reader
    sections = readelf_sections(path)
    assert sections[".hip_fatbin"][0] == "NOBITS"
    assert sections[".hipFatBinSegment"][1] == 24 * wrappers
    marker = json.loads(kbuild.upstream_python(
        "import json, sys; from pathlib import Path; from rocm_kpack.elf.kpack_transform import read_kpack_ref_marker;"
        "print(json.dumps(read_kpack_ref_marker(Path(sys.argv[1]))))", str(path)))
    assert marker == {"kernel_name": lib.ref.kernel_name, "kpack_search_paths": list(lib.ref.search_paths)}


def test_every_wrapper_points_at_the_ref_section_through_its_relocation(kbuild):
    path = kbuild.split("hip_lib") / "hip_lib_generic/lib/libk.so"
    mapped, elf = open_elf(path)
    with mapped:
        lib = read_split_library(elf, "libk.so")
    assert {w.pointer for w in lib.wrappers} == {section_addr(path, ".rocm_kpack_ref")}


def test_rdc_library_registers_once_so_only_its_first_code_object_is_asked_for(kbuild):
    """-fgpu-rdc: one device-linked fat binary, every TU's wrapper points at it and the TUs share one
    comdat handle, so only the first registration happens (readelf shows one __hip_gpubin_handle)."""
    compiled = kbuild.built / "librdc.so"
    symbols = run(["readelf", "-sW", str(compiled)])
    assert symbols.count("__hip_gpubin_handle") == 1 and symbols.count("__hip_module_ctor") == 2
    mapped, elf = split_lib(kbuild, "hip_lib", "hip_lib_generic/lib/librdc.so")
    with mapped:
        lib = read_split_library(elf, "librdc.so")
    assert lib.shared_registration and lib.keys() == ["lib/librdc.so#0"]
    # the upstream splitter filed exactly one code object per arch for it
    dump = kbuild.upstream_read(kbuild.split("hip_lib") / "hip_lib_gfx90a/lib/.kpack/hip_lib_gfx90a.kpack")
    assert sorted(k for k in dump["kernels"] if k.startswith("lib/librdc.so")) == ["lib/librdc.so#0"]


def test_unsplit_library_is_not_taken_for_a_split_one(kbuild):
    mapped, elf = open_elf(kbuild.built / "libk.so")
    with mapped:
        assert not is_split(elf)
        assert read_split_library(elf, "libk.so") is None


@pytest.mark.parametrize("artifact,rel", list(SPLIT_LIBS))
def test_upstream_split_libraries_pass_the_integrity_checks(kbuild, artifact, rel):
    mapped, elf = split_lib(kbuild, artifact, rel)
    with mapped:
        assert check_integrity(elf, rel) == []


_PHDR_PROBE = """
import ctypes, sys
class Phdr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("flags", ctypes.c_uint32)] + [(n, ctypes.c_uint64) for n in
                ("offset", "vaddr", "paddr", "filesz", "memsz", "align")]
class Info(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("name", ctypes.c_char_p), ("phdr", ctypes.POINTER(Phdr)),
                ("phnum", ctypes.c_uint16)]
ctypes.CDLL(sys.argv[1])
seen = []
def visit(info, size, data):
    if (info.contents.name or b"").decode().endswith(sys.argv[1].rsplit("/", 1)[-1]):
        seen.extend(info.contents.phdr[i].type for i in range(info.contents.phnum))
    return 0
ctypes.CDLL(None).dl_iterate_phdr(ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t,
                                                   ctypes.c_void_p)(visit), None)
print(seen)
"""


def loaded_phdr_types(path: Path) -> list[int]:
    """Program header types glibc's loader reports for the loaded library (dl_iterate_phdr)."""
    done = subprocess.run([sys.executable, "-c", _PHDR_PROBE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_stock_patchelf_corruption_of_a_split_library_is_an_error(kbuild, tmp_path):
    """Debian's patchelf moves the program headers of a kpack-split (lld-linked) library to a place no
    PT_LOAD maps at PT_PHDR's vaddr: readelf complains and glibc reports garbage program headers."""
    patchelf = stock_patchelf()
    original = kbuild.split("hip_lib") / "hip_lib_generic/lib/libk.so"
    patched = tmp_path / "libk.so"
    shutil.copy2(original, patched)
    run([str(patchelf), "--set-rpath", "$ORIGIN/../lib64:$ORIGIN/a/long/enough/path/to/need/more/room", str(patched)])
    mapped, elf = open_elf(patched)
    with mapped:
        findings = check_integrity(elf, "libk.so")
    assert [f.severity for f in findings] == ["error"]
    assert "PT_PHDR" in findings[0].message and "no PT_LOAD maps it" in findings[0].message
    assert "patchelf" in findings[0].hint
    # independent witnesses
    readelf = subprocess.run(["readelf", "-lW", str(patched)], capture_output=True, text=True)
    assert "PHDR segment is not covered by a LOAD segment" in readelf.stderr
    assert loaded_phdr_types(original)[0] == 6  # PT_PHDR first, as lld wrote it
    assert 6 not in loaded_phdr_types(patched)[:1]  # glibc now reads other bytes as the program headers


def test_relocation_left_pointing_into_the_zeroed_fatbin_is_an_error(kbuild, tmp_path):
    """A splitter that forgets one wrapper (faked by moving its RELATIVE addend back into .hip_fatbin)."""
    path = tmp_path / "libk.so"
    shutil.copy2(kbuild.split("hip_lib") / "hip_lib_generic/lib/libk.so", path)
    fatbin, segment = section_addr(path, ".hip_fatbin"), section_addr(path, ".hipFatBinSegment")
    mapped, elf = open_elf(path)
    with mapped:
        rela = elf.section(".rela.dyn")
        relocations = [r for r in dynamic_relocations(elf) if r.section == ".rela.dyn"]
        index = next(i for i, r in enumerate(relocations) if r.offset == segment + 24 + 8)  # wrapper 1's pointer
        assert relocations[index].type == R_X86_64_RELATIVE
    data = bytearray(path.read_bytes())
    struct.pack_into("<q", data, rela.offset + index * 24 + 16, fatbin + 0x100)
    path.write_bytes(bytes(data))
    assert f"{fatbin + 0x100:x}" in run(["readelf", "-rW", str(path)])
    mapped, elf = open_elf(path)
    with mapped:
        integrity = check_integrity(elf, "libk.so")
        lib = read_split_library(elf, "libk.so")
    assert [f.kind for f in integrity] == ["elf-integrity"] and "zeroed .hip_fatbin" in integrity[0].message
    assert any("not to .rocm_kpack_ref" in f.message for f in lib.findings)


def test_ref_section_that_is_not_msgpack_is_one_finding(kbuild, tmp_path):
    path = tmp_path / "libk.so"
    shutil.copy2(kbuild.split("hip_lib") / "hip_lib_generic/lib/libk.so", path)
    mapped, elf = open_elf(path)
    with mapped:
        offset = elf.section(".rocm_kpack_ref").offset
    data = bytearray(path.read_bytes())
    data[offset] = 0xC1  # never used by msgpack
    path.write_bytes(bytes(data))
    mapped, elf = open_elf(path)
    with mapped:
        lib = read_split_library(elf, "libk.so")
    assert lib.ref is None and lib.keys() == []
    assert [(f.severity, f.kind) for f in lib.findings] == [("error", "kpack-ref")]
    assert "not valid msgpack" in lib.findings[0].message


def test_program_header_with_a_wrapped_vaddr_is_an_error(kbuild, tmp_path):
    """The vaddr a stock patchelf left in a large TheRock library (0xfffffffffff79040), set in a copy."""
    path = tmp_path / "libk.so"
    shutil.copy2(kbuild.split("hip_lib") / "hip_lib_generic/lib/libk.so", path)
    data = bytearray(path.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 32)
    assert struct.unpack_from("<I", data, phoff)[0] == 6  # lld writes PT_PHDR first
    struct.pack_into("<QQ", data, phoff + 16, 0xFFFFFFFFFFF79040, 0xFFFFFFFFFFF79040)  # p_vaddr, p_paddr
    path.write_bytes(bytes(data))
    assert "0xfffffffffff79040" in run(["readelf", "-lW", str(path)])
    mapped, elf = open_elf(path)
    with mapped:
        messages = [f.message for f in check_integrity(elf, "libk.so")]
    assert len(messages) == 2
    assert "vaddr 0xfffffffffff79040" in messages[0] and "outside any user address space" in messages[0]
    assert "no PT_LOAD maps it" in messages[1]
