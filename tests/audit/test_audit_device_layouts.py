"""Where device code lives, on libraries compiled here and real files damaged on purpose.

Split bundles (one bundle per arch, as two translation units built for different arches
link), ``.incbin`` of several bundles (CCOB v2 from LLVM 19, v3 from LLVM 21), MIOpen
kernel databases holding hipcc's code objects, Tensile databases and bundle files
from Debian's hipSPARSELt with a file removed, a ``.dat`` overwritten, a file unreadable.
"""

from __future__ import annotations

import bz2
import os
import shutil
import sqlite3
import struct
import tracemalloc
import zipfile

import pytest

from rocstack.arches import parse_arch_list
from rocstack.audit import run_audit
from rocstack.audit.bundles import iter_bundles
from rocstack.audit.fatbin import BundleError

import debian_packages as debian
from audit_helpers import need_tool, run

HOST = "host-x86_64-unknown-linux-gnu-"
HIP = "hipv4-amdgcn-amd-amdhsa--"


def arch_errors(report):
    return [f for f in report.findings if f.check == "arch-coverage" and f.severity == "error"]


@pytest.fixture(scope="module")
def split_lib(tmp_path_factory):
    """Two translation units, one built for gfx90a, one for gfx1030, linked into one library: two bundles."""
    need_tool("hipcc")
    folder = tmp_path_factory.mktemp("split")
    for name, arch in (("a", "gfx90a"), ("b", "gfx1030")):
        (folder / f"{name}.hip").write_text(
            "#include <hip/hip_runtime.h>\n"
            f"__global__ void kernel_{name}(float* x) {{ x[threadIdx.x] *= 2.0f; }}\n"
            f'extern "C" void launch_{name}(float* x) {{ hipLaunchKernelGGL(kernel_{name}, 1, 64, 0, 0, x); }}\n')
        run(["hipcc", "-fPIC", "-c", f"--offload-arch={arch}", f"{name}.hip", "-o", f"{name}.o"], cwd=folder,
            env={"HIP_PLATFORM": "amd"}, timeout=600)
    run(["hipcc", "-shared", "a.o", "b.o", "-o", "libsplit.so"], cwd=folder, env={"HIP_PLATFORM": "amd"}, timeout=600)
    return folder / "libsplit.so"


def test_split_bundles_are_judged_per_bundle(split_lib, tmp_path):
    report = run_audit([split_lib], targets=parse_arch_list("gfx90a"))
    [summary] = report.files
    assert summary.fatbin["wrappers"] == 2 and len(summary.fatbin["bundles"]) == 2
    assert [sorted(e["id"] for e in b["entries"] if not e["id"].startswith("host")) for b in summary.fatbin["bundles"]] \
        == [[HIP + "gfx90a"], [HIP + "gfx1030"]]
    [error] = arch_errors(report)  # the union covers gfx90a; the gfx1030-only bundle does not
    assert "only partly covers gfx90a" in error.message and "hipErrorNoBinaryForGpu" in error.message
    assert "1 of 2 bundles lack it" in error.message
    cells = report.coverage.to_dict()["rows"][0]["cells"]
    assert cells["gfx90a"]["status"] == "partial" and cells["gfx90a"]["sources"] == ["fatbin"]
    # clang-offload-bundler-19 reads each bundle the same way
    need_tool("objcopy", "clang-offload-bundler-19")
    fat = tmp_path / "fat.bin"
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(split_lib), str(fat)])
    data = fat.read_bytes()
    for bundle in summary.fatbin["bundles"]:
        piece = tmp_path / f"b{bundle['offset']}.bin"
        piece.write_bytes(data[bundle["offset"]:bundle["offset"] + bundle["size"]])
        listed = run(["clang-offload-bundler-19", "--list", "--type=o", f"--input={piece}"]).split()
        assert sorted(listed) == sorted(e["id"] for e in bundle["entries"])


@pytest.fixture(scope="module")
def incbin_lib(hip_bundle_parts, bundler21, tmp_path_factory):
    """A library whose .hip_fatbin .incbin's two compressed bundles: gfx90a as CCOB v2 (LLVM 19),
    gfx1030 as CCOB v3 (LLVM 21), each registered by its own .hipFatBinSegment wrapper."""
    need_tool("gcc", "clang-offload-bundler-19")
    folder = tmp_path_factory.mktemp("incbin")
    objects = {e.rsplit("--", 1)[1]: p for e, p in hip_bundle_parts["objects"].items()}
    (folder / "host.o").write_bytes(b"")
    for name, arch, bundler, env in (("v2", "gfx90a", ["clang-offload-bundler-19"], {}),
                                     ("v3", "gfx1030", bundler21, {"COMPRESSED_BUNDLE_FORMAT_VERSION": "3"})):
        run([*bundler, "--type=o", "--compress", f"--targets={HOST},{HIP}{arch}", f"--input={folder / 'host.o'}",
             f"--input={objects[arch]}", f"--output={folder / name}.bin"], env=env)
    (folder / "fat.s").write_text(
        '.section .hip_fatbin,"a",@progbits\n.p2align 12\nb0:\n.incbin "v2.bin"\n.p2align 12\nb1:\n.incbin "v3.bin"\n'
        '.section .hipFatBinSegment,"aw",@progbits\n.p2align 3\n'
        ".long 0x48495046, 1\n.quad b0, 0\n.long 0x48495046, 1\n.quad b1, 0\n")
    run(["gcc", "-shared", "-fPIC", "fat.s", "-o", "libincbin.so"], cwd=folder)
    return folder / "libincbin.so"


def test_incbin_of_a_v2_and_a_v3_bundle(incbin_lib):
    report = run_audit([incbin_lib], targets=parse_arch_list("gfx90a,gfx1030"))
    [summary] = report.files
    assert [b["compression"]["version"] for b in summary.fatbin["bundles"]] == [2, 3]
    assert summary.fatbin["wrappers"] == 2 and summary.fatbin["targets"] == ["gfx1030", "gfx90a"]
    assert sum(len(c.kernels) for c in summary.code_objects) == 4
    errors = arch_errors(report)
    assert sorted(e.message.split(":")[0] for e in errors) == ["library only partly covers gfx1030",
                                                               "library only partly covers gfx90a"]


def test_standalone_bundle_files_of_any_extension_in_a_per_arch_tree(hip_bundle_parts, tmp_path):
    """aiter-like tree: per-arch directories of bundle files and code objects, named .co, .bin, .hsaco."""
    need_tool("clang-offload-bundler-19")
    objects = {e.rsplit("--", 1)[1]: p for e, p in hip_bundle_parts["objects"].items()}
    (tmp_path / "host.o").write_bytes(b"")
    for arch in ("gfx90a", "gfx1030"):
        folder = tmp_path / "kernels" / arch
        folder.mkdir(parents=True)
        shutil.copy(objects[arch], folder / "scale.hsaco")
        run(["clang-offload-bundler-19", "--type=o", "--compress", f"--targets={HOST},{HIP}{arch}",
             f"--input={tmp_path / 'host.o'}", f"--input={objects[arch]}", f"--output={folder / 'scale_bundle.bin'}"])
    shutil.copy(objects["gfx90a"], tmp_path / "kernels" / "gfx90a" / "only_gfx90a.co")
    tree = tmp_path / "kernels"
    report = run_audit([tree], targets=parse_arch_list("gfx1030"))
    kinds = sorted(f.kind for f in report.files)
    assert kinds == ["code-object"] * 3 + ["offload-bundle"] * 2
    rows = {r["name"]: r for r in report.coverage.to_dict()["rows"]}
    assert set(rows) == {"{arch}/scale.hsaco", "{arch}/scale_bundle.bin", "{arch}/only_{arch}.co"}
    assert rows["{arch}/scale_bundle.bin"]["cells"]["gfx1030"]["sources"] == ["bundle-file"]
    [warning] = [f for f in report.findings if f.check == "arch-coverage"]
    assert warning.severity == "warning" and "1 kernel sets have no gfx1030" in warning.message
    assert report.exit_code == 0
    [error] = arch_errors(run_audit([tree], targets=parse_arch_list("gfx942")))
    assert "no code for gfx942 anywhere" in error.message and "3 kernel-sets" in error.message


def _kdb(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kern_db (id INTEGER PRIMARY KEY ASC, kernel_name TEXT NOT NULL, kernel_args TEXT "
               "NOT NULL, kernel_blob BLOB NOT NULL, kernel_hash TEXT NOT NULL, uncompressed_size INT NOT NULL)")
    for name, blob, size in rows:
        db.execute("INSERT INTO kern_db (kernel_name, kernel_args, kernel_blob, kernel_hash, uncompressed_size) "
                   "VALUES (?, '-O3', ?, 'h', ?)", (name, blob, size))
    db.commit()
    db.close()


def test_miopen_kernel_databases(hip_bundle_parts, tmp_path):
    """kern_db rows as MIOpen stores them: bzip2 blobs with uncompressed_size, or raw code objects."""
    objects = {e.rsplit("--", 1)[1]: p.read_bytes() for e, p in hip_bundle_parts["objects"].items()}
    gfx90a = objects["gfx90a"]
    folder = tmp_path / "share" / "miopen" / "db"
    folder.mkdir(parents=True)
    _kdb(folder / "gfx90a68.kdb", [("scale.o", bz2.compress(gfx90a), len(gfx90a)), ("raw.o", gfx90a, 0)])
    _kdb(folder / "gfx1030_36.kdb", [("scale.o", bz2.compress(objects["gfx1030"]), len(objects["gfx1030"])),
                                     ("broken.o", b"BZh9" + b"\0" * 40, 5000)])
    _kdb(folder / "gfx942130.kdb", [("scale.o", gfx90a, 0)])  # misnamed: holds gfx90a code
    (folder / "notes.kdb").write_bytes(b"SQLite format 3\0" + b"\xff" * 200)  # corrupt database
    report = run_audit([tmp_path / "share"], targets=parse_arch_list("gfx90a,gfx1030"))
    by_name = {os.path.basename(f.path): f for f in report.files}
    assert by_name["gfx90a68.kdb"].kind == "kernel-database" and len(by_name["gfx90a68.kdb"].code_objects) == 2
    [row] = [r for r in report.coverage.to_dict()["rows"] if r["kind"] == "kernel-database"]
    units = {u["where"]: u for u in row["units"]}
    assert units["gfx90a68.kdb"] == {"source": "kernel-database", "where": "gfx90a68.kdb", "targets": ["gfx90a"],
                                     "problems": []}
    assert "1 unreadable kernels: row 2 (broken.o)" in units["gfx1030_36.kdb"]["problems"][0]
    assert units["gfx942130.kdb"]["problems"] == ["named for gfx942 but holds gfx90a code objects"]
    assert row["cells"]["gfx90a"]["status"] == "covered"
    assert [f.message for f in report.findings if f.file.endswith("notes.kdb")] == [
        "corrupt: corrupt SQLite database: file is not a database"]


@pytest.fixture
def hipsparselt_copy(tmp_path):
    library = debian.tree(debian.HIPSPARSELT) / "usr/lib/x86_64-linux-gnu/hipsparselt/library"
    copy = tmp_path / "library"
    shutil.copytree(library, copy)
    return copy


def test_damaged_tensile_database_gives_one_finding_per_problem(hipsparselt_copy, monkeypatch):
    library = hipsparselt_copy
    ok = run_audit([library], targets=parse_arch_list("gfx942"))
    assert not [f for f in ok.findings if f.severity == "error"], ok.findings
    victims = sorted(p.name for p in library.glob("*_gfx942.co") if p.read_bytes()[:4] == b"CCOB")
    (library / victims[0]).unlink()  # a lazy entry of the gfx942 index loses its code object
    (library / victims[1].replace(".co", ".dat")).write_bytes(b"this is not msgpack\n" * 10)
    (library / victims[2]).unlink()
    os.symlink("nowhere.co", library / victims[2])  # unreadable: the link points at nothing
    report = run_audit([library], targets=parse_arch_list("gfx942,gfx950"))
    errors = [f for f in report.findings if f.severity == "error"]
    by_file = {os.path.basename(f.file): f for f in errors}
    assert "not msgpack" in by_file[victims[1].replace(".co", ".dat")].message
    assert by_file[victims[2]].check == "io" and "cannot read" in by_file[victims[2]].message
    [coverage] = [f for f in errors if f.check == "arch-coverage"]
    assert coverage.message.startswith("kernel database only partly covers gfx942")
    assert victims[0] in coverage.message and "code objects missing" in coverage.message
    assert len(errors) == 3 and report.exit_code == 2  # an unreadable file: the audit could not see everything


def test_truncated_and_lying_standalone_bundles(hipsparselt_copy, tmp_path):
    library = hipsparselt_copy
    [ccob] = sorted(p for p in library.glob("*_gfx942.co") if p.read_bytes()[:4] == b"CCOB")[:1]
    [plain] = [p for p in library.glob("*.hsaco") if p.read_bytes()[:24] == b"__CLANG_OFFLOAD_BUNDLE__"]
    bad = tmp_path / "bad"
    bad.mkdir()
    data = ccob.read_bytes()
    (bad / "truncated_gfx942.co").write_bytes(data[: len(data) // 2])
    plain_data = bytearray(plain.read_bytes())
    struct.pack_into("<Q", plain_data, 32 + 8, len(plain_data) * 4)  # first entry's size runs past the end
    (bad / "past_eof.hsaco").write_bytes(bytes(plain_data))
    report = run_audit([bad])
    messages = {os.path.basename(f.file): f.message for f in report.findings if f.severity == "error"}
    assert "claims total size" in messages["truncated_gfx942.co"] and "corrupt" in messages["truncated_gfx942.co"]
    assert "lies past the end" in messages["past_eof.hsaco"]
    assert len([f for f in report.findings if f.check == "hip-fatbin"]) == 2


def test_lying_compressed_sizes_inflate_nothing():
    """A CCOB claiming 3 GB from a few bytes, and one claiming entries past its data: memory stays small."""
    payload = __import__("zstandard").ZstdCompressor().compress(b"\0" * 4096)
    huge = struct.pack("<4sHHQQQ", b"CCOB", 3, 1, 32 + len(payload), 3 << 30, 0) + payload
    tracemalloc.start()
    try:
        with pytest.raises(BundleError):
            for bundle in iter_bundles(huge, 0, len(huge)):
                list(bundle.code_objects())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_directory_of_non_elf_libraries_is_never_a_pass(tmp_path):
    for i in range(1000):
        (tmp_path / f"libfake{i}.so").write_text("not an ELF file\n")
    (tmp_path / "libc.so").write_text("/* GNU ld script */\nGROUP ( /lib/libc.so.6 )\n")  # a linker script: fine
    (tmp_path / "notes.so.c").write_text("int x;\n")  # a C source, not a library name
    report = run_audit([tmp_path])
    names = [f for f in report.findings if "not an ELF file" in f.message]
    assert len(names) == 1000 and all(f.severity == "error" for f in names)
    assert any("nothing auditable found" in f.message for f in report.findings)
    assert report.exit_code == 1 and report.files == []


def test_wheel_declaring_therock_device_packages(hip_fatbin_lib, tmp_path):
    """A TheRock-style wheel names its device packages; what it ships is compared with them."""
    wheel = tmp_path / "hiplib-1.0-py3-none-linux_x86_64.whl"
    metadata = ("Metadata-Version: 2.1\nName: hiplib\nVersion: 1.0\n"
                "Requires-Dist: numpy\n"
                "Requires-Dist: rocm-sdk-device-gfx90a ; extra == 'device-gfx90a'\n"
                "Requires-Dist: amd-torch-device-gfx94X-dcgpu ; extra == 'device-gfx94X-dcgpu'\n"
                "Provides-Extra: device-gfx90a\nProvides-Extra: device-gfx94X-dcgpu\nProvides-Extra: device-all\n")
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(hip_fatbin_lib, "hiplib/libk.so")
        archive.writestr("hiplib-1.0.dist-info/METADATA", metadata)
    report = run_audit([wheel])
    [declared] = report.declared
    assert declared["arches"] == ["gfx90a", "gfx94X-dcgpu"] and declared["source"] == "wheel-metadata"
    assert declared["missing"] == ["gfx942"] and declared["undeclared"] == ["gfx1030"]
    found = {f.severity: f.message for f in report.findings if f.check == "declared-arches"}
    assert "declares gfx942 but ships no code for it" in found["error"]
    assert "ships code for gfx1030, which it does not declare" in found["warning"]


def test_hipk_wrapper_without_kpack_metadata_is_an_error_never_no_gpu_code(hip_fatbin_lib, tmp_path):
    """A HIPK wrapper with no .rocm_kpack_ref: the loader has no kernel name or search path. The audit says so
    (the structure), never "corrupt", never "no GPU code", and the coverage matrix says why the cell is missing."""
    need_tool("objcopy")
    lib = tmp_path / "libsplit.so"
    segment = tmp_path / "segment.bin"
    run(["objcopy", "--dump-section", f".hipFatBinSegment={segment}", str(hip_fatbin_lib), str(lib)])
    data = bytearray(segment.read_bytes())
    struct.pack_into("<I", data, 0, 0x4B504948)  # HIPK
    segment.write_bytes(bytes(data))
    run(["objcopy", "--update-section", f".hipFatBinSegment={segment}", str(lib)])
    plain = run_audit([lib])
    [error] = [f for f in plain.findings if f.check == "hip-fatbin"]
    assert error.severity == "error" and "HIPK wrappers but no .rocm_kpack_ref" in error.message
    assert plain.files[0].fatbin["split"] == "kpack" and plain.files[0].fatbin["wrappers"] == ["HIPK"]
    [unit] = plain.coverage.to_dict()["rows"][0]["units"]
    assert unit["source"] == "kpack" and unit["where"] == "wrapper 0 (co_index 0)" and unit["problems"]
    judged = run_audit([lib], targets=parse_arch_list("gfx90a"))
    assert arch_errors(judged) == []  # the structural error is the one finding: no second "no code object" one
    assert [f.message for f in judged.findings if f.severity == "error"] == [error.message]
    cell = judged.coverage.to_dict()["rows"][0]["cells"]["gfx90a"]
    assert cell["status"] == "missing" and "no .rocm_kpack_ref" in cell["detail"]
    assert not any("no code object" in f.message or "corrupt" in f.message for f in judged.findings)


GENERIC_SOURCE = """
#define __global__ __attribute__((global))
struct dim3 { unsigned x, y, z; };
typedef struct ihipStream_t* hipStream_t;
extern "C" int hipLaunchKernel(const void*, dim3, dim3, void**, unsigned long, hipStream_t);
extern "C" __global__ void scale(float* x, float a) {
#ifdef __HIP_DEVICE_COMPILE__
  x[__builtin_amdgcn_workitem_id_x()] *= a;
#endif
}
"""


def test_generic_code_objects_from_clang(tmp_path):
    """clang-19 (no ROCm headers or device libs) builds gfx942 plus two generic targets, code object v6."""
    need_tool("clang-19", "objcopy", "clang-offload-bundler-19")
    (tmp_path / "k.hip").write_text(GENERIC_SOURCE)
    run(["clang-19", "-x", "hip", "-nogpulib", "-nogpuinc", "--offload-arch=gfx942", "--offload-arch=gfx11-generic",
         "--offload-arch=gfx10-3-generic", "-mcode-object-version=6", "-fPIC", "-shared", "-o", "libgen.so", "k.hip"],
        cwd=tmp_path)
    lib = tmp_path / "libgen.so"
    report = run_audit([lib], targets=parse_arch_list("gfx942,gfx1100,gfx1151,gfx1030,gfx90a"))
    objects = {o.target_id: o for o in report.files[0].code_objects}
    assert {t: (o.mach, o.code_object_version, o.generic_version) for t, o in objects.items()} == {
        "gfx942": (0x4C, 6, None), "gfx11-generic": (0x54, 6, 1), "gfx10-3-generic": (0x53, 6, 1)}
    run(["objcopy", "-O", "binary", "--only-section=.hip_fatbin", str(lib), str(tmp_path / "fat.bin")])
    listed = run(["clang-offload-bundler-19", "--list", "--type=o", f"--input={tmp_path / 'fat.bin'}"]).split()
    assert sorted(e["id"] for b in report.files[0].fatbin["bundles"] for e in b["entries"]) == sorted(listed)
    coverage = {f.message.split()[0]: f.severity for f in report.findings if f.check == "arch-coverage"}
    assert coverage == {"gfx1100": "info", "gfx1151": "info", "gfx1030": "info", "no": "error"}
    [error] = arch_errors(report)
    assert "gfx90a" in error.message
