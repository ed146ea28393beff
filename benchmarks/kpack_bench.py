"""Benchmark: reading every code object of a large kpack archive, rocstack beside the upstream reader.

The archive is written by the upstream rocm-kpack writer (``PackedKernelArchive``, scheme
``none`` and ``zstd-per-kernel``) from the real code objects of the kpack test fixtures
(hipcc-built, split by the upstream tool), each padded with incompressible bytes to
``--blob-mib`` so the archive reaches ``--entries x --blob-mib`` MiB. Peers, each in its own
process so its peak RSS is its own (os.wait4):

- upstream: ``PackedKernelArchive.read`` + ``get_kernel`` for every entry (Python >= 3.12),
- rocstack read_blob: our reader, bytes of every entry (what a cross-check needs),
- rocstack iter_code_objects: our reader verifying and parsing every entry (what the audit does).

    python benchmarks/kpack_bench.py [--entries 200] [--blob-mib 1] [--repeat 3]

Needs ../shared/third_party/rocm-kpack, a Python >= 3.12 and hipcc (as the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "audit"))

_WRITE = """
import os, sys
from pathlib import Path
from rocm_kpack.kpack import PackedKernelArchive
from rocm_kpack.compression import ZstdCompressor
src, out, entries, pad = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
old = PackedKernelArchive.read(src)
blobs = [(key, arch, old.get_kernel(key, arch)) for key, arches in old.toc.items() for arch in arches]
for scheme in ("none", "zstd"):
    new = PackedKernelArchive(old.group_name, old.gfx_arch_family, old.gfx_arches,
                              compressor=ZstdCompressor() if scheme == "zstd" else None)
    for i in range(entries):
        key, arch, data = blobs[i % len(blobs)]
        new.add_kernel(new.prepare_kernel(f"lib/libbench{i}.so#0", arch, data + os.urandom(pad)))
    new.finalize_archive()
    new.write(out / f"bench_{scheme}.kpack")
"""

_UPSTREAM = """
import sys, time
from pathlib import Path
from rocm_kpack.kpack import PackedKernelArchive
t = time.perf_counter()
a = PackedKernelArchive.read(Path(sys.argv[1]))
n = sum(len(a.get_kernel(k, arch)) > 0 for k, arches in a.toc.items() for arch in arches)
print(n, time.perf_counter() - t)
"""

_OURS = """
import sys, time
from rocstack.audit.kpack_archive import iter_code_objects, open_archive, read_blob
t = time.perf_counter()
a = open_archive(sys.argv[1])
if sys.argv[2] == "bytes":
    n = sum(len(read_blob(a, e)) > 0 for e in a.entries)
else:
    n = sum(item.code_object is not None for item in iter_code_objects(a))
assert not a.findings, a.findings
print(n, time.perf_counter() - t)
"""


def measure(cmd: list[str], env: dict) -> tuple[int, float, float, float]:
    """(entries read, seconds inside, CPU seconds, peak RSS MiB) of one child process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, **env}, text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"error: {cmd[0]} failed ({status})")
    count, seconds = out.split()
    return int(count), float(seconds), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--blob-mib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import kpack_fixtures  # noqa: E402  (the tests' cached, upstream-made build)
    try:
        build = kpack_fixtures.kpack_build()
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        print(f"error: cannot build the kpack fixtures: {exc} - see tests/audit/kpack_fixtures.py", file=sys.stderr)
        return 2
    source = build.split("hip_lib") / "hip_lib_gfx90a" / "lib" / ".kpack" / "hip_lib_gfx90a.kpack"
    upstream_env = {"PYTHONPATH": str(build.upstream / "python")}
    ours_env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="kpack-bench.") as tmp:
        subprocess.run([str(build.python), "-c", _WRITE, str(source), tmp, str(args.entries),
                        str(int(args.blob_mib * (1 << 20)))], env={**os.environ, **upstream_env}, check=True)
        print(f"{args.entries} entries of ~{args.blob_mib} MiB; median of {args.repeat} runs; each peer in its own "
              "process\n")
        print(f"| scheme | archive MiB | reader | seconds | CPU s | peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for scheme in ("none", "zstd"):
            archive = os.path.join(tmp, f"bench_{scheme}.kpack")
            size = os.path.getsize(archive) / (1 << 20)
            peers = {
                "upstream PackedKernelArchive": ([str(build.python), "-c", _UPSTREAM, archive], upstream_env),
                "rocstack read_blob": ([sys.executable, "-c", _OURS, archive, "bytes"], ours_env),
                "rocstack iter_code_objects": ([sys.executable, "-c", _OURS, archive, "parse"], ours_env),
            }
            for name, (cmd, env) in peers.items():
                runs = [measure(cmd, env) for _ in range(args.repeat)]
                assert {r[0] for r in runs} == {args.entries}, runs
                print(f"| {scheme} | {size:.0f} | {name} | {statistics.median(r[1] for r in runs):.2f} | "
                      f"{statistics.median(r[2] for r in runs):.2f} | {statistics.median(r[3] for r in runs):.0f} |")
    print(json.dumps({"host_cpus": os.cpu_count(), "load_avg": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
