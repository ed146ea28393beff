"""Make the fuzz seed corpus (``tests/fuzz/corpus/``) from real tools, so no blob has to be trusted.

    python3 tests/fuzz/make_corpus.py            # rewrite corpus/
    python3 tests/fuzz/make_corpus.py --check    # make it in a temporary directory, compare byte for byte
    python3 tests/fuzz/make_corpus.py --out DIR  # make it somewhere else

Tools (Debian package): clang-19 + ld.lld-19 (clang-19, lld-19) for the code objects;
clang-offload-bundler-19 (clang-tools-19) for plain and CCOB v2 bundles; sid's
clang-offload-bundler-21 (unpacked, never installed, by ``tests/debian_packages.py``) for CCOB v3;
gcc + GNU ld (gcc, binutils) for the host libraries; hipcc (Debian's ROCm 5.2) and the upstream
rocm-kpack tool (``../shared/third_party/rocm-kpack`` under Python >= 3.12) for a HIP library,
its kpack split and its archives (``tests/audit/kpack_fixtures.py``, cached); Debian's
libhipsparselt0 7.2.4 for the Tensile ``.dat`` files (downloaded once, cut down here); rocstack's
own attestation code (``rocstack.registry.attestation``: what ``push`` signs) for the statements.

Made here, with the transformation named: a CCOB v1 and a zlib CCOB v2 (the v2 zstd bundle's
payload re-headed / recompressed; no tool here writes them; ``clang-offload-bundler-19 --list``
reads both back), the metadata notes (cut from the code objects), a MIOpen ``.kdb`` (SQLite with
MIOpen's ``kern_db`` schema holding the gfx942 code object, raw and bzip2'd).
"""

from __future__ import annotations

import argparse
import bz2
import filecmp
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
for folder in (HERE, TESTS, TESTS / "audit", TESTS / "registry"):
    sys.path.insert(0, str(folder))

CORPUS = HERE / "corpus"
HOST = "host-x86_64-unknown-linux-gnu-"
HIP = "hipv4-amdgcn-amd-amdhsa--"
# (target ID, code object version): a v5 target with both features, a v4 xnack+ one, wave32, a v6 generic
CODE_OBJECTS = (("gfx942:sramecc+:xnack-", 5), ("gfx90a:xnack+", 4), ("gfx1100", 5), ("gfx11-generic", 6))
KERNELS = """
__kernel void scale(__global float* x, float a) { x[__builtin_amdgcn_workitem_id_x()] *= a; }
__kernel void lds(__global float* x) {
  __local float buf[1024]; uint i = __builtin_amdgcn_workitem_id_x();
  buf[i] = x[i]; __builtin_amdgcn_s_barrier(); x[i] = buf[(i + 1) % 1024]; }
"""
HOST_C = """
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char* names[] = {"alpha", "beta", "gamma"};  /* data relocations (RELR with -z pack-relative-relocs) */
const char** table = names;
int fuzz_old(int x) { return x + 1; }
int fuzz_new(int x) { return x + 2; }
__asm__(".symver fuzz_old, fuzz_api@FUZZ_1.0");
__asm__(".symver fuzz_new, fuzz_api@@FUZZ_2.0");
__attribute__((weak)) int fuzz_weak(void) { return 0; }
char* fuzz_copy(const char* s) { char* out = malloc(strlen(s) + 1); if (out) strcpy(out, s); printf("%s\\n", out); return out; }
"""
HOST_MAP = "FUZZ_1.0 { global: fuzz_api; fuzz_copy; table; fuzz_weak; local: *; };\nFUZZ_2.0 { global: fuzz_api; } FUZZ_1.0;\n"
HOST_CXX = """
#include <string>
#include <vector>
std::string fuzz_join(const std::vector<std::string>& parts) { std::string out; for (auto& p : parts) out += p; return out; }
"""


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
                         " - install the tool named in make_corpus.py's docstring")
    return done.stdout


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not installed - see make_corpus.py's docstring for the packages")


def _safe(name: str) -> str:
    """A target ID as a file name: gfx90a:xnack+ -> gfx90a_xnackp, gfx942:sramecc+:xnack- -> gfx942_srameccp_xnackm."""
    return re.sub(r"(xnack|sramecc)-", r"\1m", name).replace(":", "_").replace("+", "p")


# -- code objects, metadata, bundles ------------------------------------------------------------------

def code_objects(out: Path, work: Path) -> dict[str, Path]:
    need("clang-19", "ld.lld-19", "llvm-readelf-19")
    (work / "k.cl").write_text(KERNELS)
    made = {}
    for target, version in CODE_OBJECTS:
        path = out / "code-object" / f"{_safe(target)}.co"
        run(["clang-19", "-x", "cl", "-target", "amdgcn-amd-amdhsa", f"-mcpu={target}",
             f"-mcode-object-version={version}", "-nogpulib", "-O2", "-o", str(path), "k.cl"], cwd=work)
        notes = run(["llvm-readelf-19", "--notes", str(path)])  # an independent reader sees the metadata
        assert "NT_AMDGPU_METADATA" in notes or "AMDGPU Metadata" in notes, notes
        (out / "metadata" / f"{_safe(target)}.msgpack").write_bytes(metadata_note(path.read_bytes()))
        made[target] = path
    return made


def metadata_note(data: bytes) -> bytes:
    """The desc of the NT_AMDGPU_METADATA note (gABI note layout, sections read with struct)."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, = struct.unpack_from("<H", data, 60)
    for index in range(shnum):
        _name, typ, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * 64)
        pos = offset
        while typ == 7 and pos + 12 <= offset + size:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            desc = pos + 12 + (namesz + 3) // 4 * 4
            if ntype == 32:
                return data[desc:desc + descsz]
            pos = desc + (descsz + 3) // 4 * 4
    raise SystemExit("error: no NT_AMDGPU_METADATA note in a code object clang made - check clang-19")


def bundles(out: Path, objects: dict[str, Path], work: Path) -> None:
    import debian_packages as debian

    need("clang-offload-bundler-19")
    folder = out / "bundle"
    targets = ",".join([HOST] + [HIP + t for t in ("gfx942:sramecc+:xnack-", "gfx90a:xnack+")])
    inputs = ["--input=/dev/null", f"--input={objects['gfx942:sramecc+:xnack-']}", f"--input={objects['gfx90a:xnack+']}"]
    plain, v2 = folder / "plain.hipfb", folder / "ccob-v2-zstd.hipfb"
    run(["clang-offload-bundler-19", "--type=o", f"--targets={targets}", *inputs, f"--output={plain}"])
    run(["clang-offload-bundler-19", "--type=o", "-compress", f"--targets={targets}", *inputs, f"--output={v2}"])
    bundler21 = debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/clang-offload-bundler")
    v3 = folder / "ccob-v3-zstd.hipfb"
    single = f"--targets={HOST},{HIP}gfx1100"
    run([*bundler21, "--type=o", "-compress", single, "--input=/dev/null", f"--input={objects['gfx1100']}",
         f"--output={v3}"], env={"COMPRESSED_BUNDLE_FORMAT_VERSION": "3"})
    assert v3.read_bytes()[4:6] == b"\x03\x00", "clang-offload-bundler-21 did not write CCOB v3"
    data = v2.read_bytes()
    _magic, _version, _method, _total, size, digest = struct.unpack_from("<4sHHIIQ", data)
    payload = data[24:]
    (folder / "ccob-v1-zstd.hipfb").write_bytes(struct.pack("<4sHHIQ", b"CCOB", 1, 1, size, digest) + payload)
    import zstandard

    deflated = zlib.compress(zstandard.ZstdDecompressor().decompress(payload, max_output_size=size), 9)
    (folder / "ccob-v2-zlib.hipfb").write_bytes(struct.pack("<4sHHIIQ", b"CCOB", 2, 0, 24 + len(deflated), size,
                                                            digest) + deflated)
    # two bundles back to back on 4096-byte boundaries, as a linked .hip_fatbin holds them
    (folder / "two-bundles.hipfb").write_bytes(plain.read_bytes().ljust(12288, b"\0") + v2.read_bytes())
    for path in sorted(folder.iterdir()):  # clang reads every one of them back
        if path.name != "ccob-v3-zstd.hipfb" and path.name != "two-bundles.hipfb":
            listed = run(["clang-offload-bundler-19", "--list", "--type=o", f"--input={path}"])
            assert HIP in listed, (path, listed)
    assert "gfx1100" in run([*bundler21, "--list", "--type=o", f"--input={v3}"])


# -- host libraries, HIP library, kpack split and archives ------------------------------------------

def host_libraries(out: Path, work: Path) -> None:
    need("gcc", "g++")
    (work / "host.c").write_text(HOST_C)
    (work / "host.map").write_text(HOST_MAP)
    (work / "cxx.cpp").write_text(HOST_CXX)
    folder = out / "elf"
    run(["gcc", "-shared", "-fPIC", "-O1", "-Wl,--version-script=host.map", "-Wl,-z,pack-relative-relocs",
         "-Wl,--build-id=none", "-o", str(folder / "libhost.so"), "host.c"], cwd=work)
    run(["g++", "-shared", "-fPIC", "-O1", "-Wl,--build-id=none", "-o", str(folder / "libcxx.so"), "cxx.cpp"], cwd=work)
    run(["strip", "--strip-unneeded", str(folder / "libcxx.so"), str(folder / "libhost.so")])


def kpack_pieces(out: Path) -> None:
    import kpack_fixtures

    build = kpack_fixtures.kpack_build()
    shutil.copyfile(build.built / "libxnack.so", out / "elf" / "libhip_xnack.so")  # hipcc: .hip_fatbin, 2 code objects
    split = build.split("torch_xnack")
    shutil.copyfile(split / "torch_generic/torch/lib/libtorch_xnack.so", out / "kpack-split" / "libtorch_xnack.so")
    shutil.copyfile(build.split("hip_lib") / "hip_lib_generic/lib/librdc.so", out / "kpack-split" / "librdc.so")
    for compression, name in (("none", "torch_gfx90a_xnackp.kpack"), ("zstd", "torch_gfx90a_xnackp-zstd.kpack")):
        source = build.split("torch_xnack", compression) / "torch_gfx90a:xnack+/torch/.kpack/torch_gfx90a:xnack+.kpack"
        shutil.copyfile(source, out / "kpack" / name)


# -- kernel databases ---------------------------------------------------------------------------------

def _cut(node, keep: int = 2):
    """A Tensile library tree with every list and ProblemMap cut to ``keep`` items (structure kept)."""
    if isinstance(node, list):
        return [_cut(item, keep) for item in node[:keep]]
    if isinstance(node, dict):
        return {key: (dict(list((k, _cut(v, keep)) for k, v in value.items())[:keep]) if key == "map"
                      and isinstance(value, dict) else _cut(value, keep)) for key, value in node.items()}
    return node


def _placeholders(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        if node.get("type") == "Placeholder":
            found.append(node["value"])
        for value in node.values():
            _placeholders(value, found)
    elif isinstance(node, list):
        for value in node:
            _placeholders(value, found)
    return found


def tensile(out: Path) -> None:
    import debian_packages as debian
    import msgpack

    library = debian.tree(debian.HIPSPARSELT) / "usr/lib/x86_64-linux-gnu/hipsparselt/library"
    index = msgpack.unpackb((library / "TensileLibrary_lazy_gfx942.dat").read_bytes(), raw=False,
                            strict_map_key=False)
    small = _cut(index)
    (out / "tensile" / "TensileLibrary_lazy_gfx942.dat").write_bytes(msgpack.packb(small, use_bin_type=True))
    placeholder = sorted(_placeholders(small, []))[0]
    solutions = msgpack.unpackb((library / f"{placeholder}.dat").read_bytes(), raw=False, strict_map_key=False)
    (out / "tensile" / f"{placeholder}.dat").write_bytes(msgpack.packb(_cut(solutions, 1), use_bin_type=True))


def kdb(out: Path, objects: dict[str, Path]) -> None:
    """MIOpen's kern_db schema (MIOpen ``kern_db.hpp``), one raw and one bzip2'd gfx942 code object."""
    code = objects["gfx942:sramecc+:xnack-"].read_bytes()
    path = out / "kdb" / "gfx942130.kdb"
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size = 1024")
    db.execute("CREATE TABLE kern_db (id INTEGER PRIMARY KEY ASC, kernel_name TEXT NOT NULL, kernel_args TEXT "
               "NOT NULL, kernel_blob BLOB NOT NULL, kernel_hash TEXT NOT NULL, uncompressed_size INT NOT NULL)")
    db.execute("CREATE UNIQUE INDEX idx_kern_db ON kern_db (kernel_name, kernel_args)")
    db.execute("INSERT INTO kern_db (kernel_name, kernel_args, kernel_blob, kernel_hash, uncompressed_size) "
               "VALUES ('scale.o', '-O3', ?, 'h1', ?)", (bz2.compress(code, 9), len(code)))
    db.execute("INSERT INTO kern_db (kernel_name, kernel_args, kernel_blob, kernel_hash, uncompressed_size) "
               "VALUES ('raw.o', '-O2', ?, 'h2', 0)", (code,))
    db.commit()
    db.execute("VACUUM")
    db.close()


# -- attestations -------------------------------------------------------------------------------------------

REPORT = {  # a validation report in the shape validate writes (docs/validation.md), fixed so the bytes are
    "schema": "rocstack.validation/v1", "rocstack_version": "0.1.0", "target": "image",
    "image": {"id": "sha256:" + "c" * 64, "repo_digests": [], "tags": ["rocstack/local:gfx942-latest"]},
    "stack": "local", "arches": ["gfx942"], "verdict": "pass", "level": "gpu-verified",
    "level_reason": "GPU checks passed on AMD Instinct MI300X", "started": "2026-12-01T10:00:00+00:00",
    "duration_s": 12.5,
    "environment": {"gpu": {"available": True, "vendor": "amd", "name": "AMD Instinct MI300X",
                            "target_id": "gfx942:sramecc+:xnack-"}},
    "gpu_access": {"vendor": "amd", "reason": "/dev/kfd and /dev/dri present", "docker_options": {"devices": ["/dev/kfd"]}},
    "checks": [
        {"name": "audit:torch", "category": "audit", "status": "pass", "evidence": "0 errors", "duration_s": 1.0},
        {"name": "gpu-arch", "category": "python", "status": "pass", "evidence": "gfx942", "duration_s": 0.1},
        {"name": "pytest:kernels[gpu]", "category": "correctness", "status": "pass", "evidence": "12 passed",
         "duration_s": 8.0},
        {"name": "perf:rms_norm", "category": "performance", "status": "skip", "evidence": "no floor", "duration_s": 0},
    ],
}


def attestations(out: Path) -> None:
    from fuzz_targets import DIGEST, STACK, test_key
    from regtest_support import legacy_envelope, legacy_payload

    from rocstack.registry import attestation
    from rocstack.registry.refusals import canonical_json

    key, _trusted = test_key()
    statement = attestation.build_statement(
        repository="127.0.0.1:5000/rocstack", digest=DIGEST,
        media_type="application/vnd.oci.image.manifest.v1+json", image_id=REPORT["image"]["id"], stack=STACK,
        arches=["gfx942"], components=[{"name": "torch", "version": "2.13.0", "ref": "2.13.0+cpu",
                                        "source_sha256": None}],
        report=REPORT, validated=True, created="2026-12-01T10:05:00.000000+00:00")
    statement["predicate"]["rocstack_version"] = "0.1.0"  # fixed bytes whatever rocstack version runs this
    (out / "statement" / "statement.json").write_bytes(canonical_json(statement))
    (out / "dsse-bundle" / "bundle.json").write_bytes(attestation.sign(statement, key))
    payload = legacy_payload(DIGEST, REPORT, stack=STACK)
    payload["created"] = "2026-12-01T10:05:00+00:00"
    (out / "legacy" / "envelope.json").write_bytes(legacy_envelope(payload, key))


FOLDERS = ("elf", "kpack-split", "bundle", "code-object", "metadata", "kpack", "tensile", "kdb", "statement",
           "dsse-bundle", "legacy")


def make(out: Path) -> None:
    for folder in FOLDERS:
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as scratch:
        work = Path(scratch)
        objects = code_objects(out, work)
        bundles(out, objects, work)
        host_libraries(out, work)
        kpack_pieces(out)
        tensile(out)
        kdb(out, objects)
        attestations(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CORPUS, help="where to write the corpus (default: corpus/)")
    parser.add_argument("--check", action="store_true", help="make it in a temporary directory and compare with corpus/")
    args = parser.parse_args()
    if not args.check:
        make(args.out)
        total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
        print(f"corpus written to {args.out}: {total} bytes")
        return 0
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-check-") as scratch:
        fresh = Path(scratch)
        make(fresh)
        differ = []
        for folder in FOLDERS:
            compared = filecmp.dircmp(fresh / folder, CORPUS / folder)
            differ += [f"{folder}/{name}" for name in compared.left_only + compared.right_only + compared.diff_files]
            _match, mismatch, errors = filecmp.cmpfiles(fresh / folder, CORPUS / folder, compared.common_files,
                                                       shallow=False)
            differ += [f"{folder}/{name}" for name in mismatch + errors if f"{folder}/{name}" not in differ]
    if differ:
        print("error: regenerated corpus differs: " + ", ".join(sorted(differ)) + " - run make_corpus.py and commit")
        return 1
    print("corpus matches its regeneration byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
