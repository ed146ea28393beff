"""Benchmark: `rocstack audit` of large real libraries beside independent tools, in the same run.

The library is libtorch_cpu.so from the installed torch wheel (override with --lib).
Peers, each in its own process so its peak RSS is its own (os.wait4):

- upstream: ``nm -gDCu LIB`` + ``objdump -TC LIB`` (FBGEMM's post-build check;
  it only lists undefined symbols and versions, resolving nothing),
- pyelftools: iterating the dynamic symbols the way a pure-pyelftools audit would,
- c++filt batched: demangling every dynamic symbol name in one c++filt process, against
  one process per name (extrapolated from 200 runs: why the audit batches),
- rocstack run_audit: the full audit (DT_NEEDED closure, symbol resolution, versions,
  RPATH, fat binary), timed inside the process and with interpreter start,
- rocstack audit CLI: the console command end to end.

- rocstack run_audit + table (no CLI): what ``rocstack audit`` costs once the CLI layer
  imports lazily (the difference to the CLI row is the CLI's own start-up).

``--pad-gib N`` also audits a copy of the library padded to N GiB with an extra
section, to show memory stays bounded when the file is huge.

``--device`` adds device code (issue 15): Debian's librocblas4 6.4.4 (a 1.02 GB
``.hip_fatbin``, 66 bundles, ~106k kernels) and libhipblaslt1 7.1.1's Tensile ``library/``
(718 standalone bundles, 6.7 GB of device code once decompressed), downloaded once into the
test cache by tests/debian_packages.py, beside ``llvm-objdump-21 --offloading`` (sid's LLVM,
extracts every code object to files) and ``clang-offload-bundler-19 --list`` (lists entries,
one process per bundle file). Wall time, CPU time and peak RSS of each process (os.wait4):
on a shared machine the CPU column is the one to compare.

    python benchmarks/audit_bench.py [--lib PATH] [--repeat 5] [--pad-gib 1] [--device]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchtools import measured, print_markdown

_AUDIT_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from rocstack.audit import load_policy, run_audit
t1 = time.perf_counter()
report = run_audit([sys.argv[1]], policy=load_policy("manylinux_2_28"))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "audit_s": t2 - t1, "findings": len(report.findings),
                  "verdict": report.verdict}))
"""

_TABLE_CHILD = """
import io, sys
from rocstack.arches import parse_arch_list
from rocstack.audit import load_policy, run_audit
from rocstack.audit.table import render
targets = parse_arch_list(sys.argv[2]) if len(sys.argv) > 2 else []
report = run_audit([sys.argv[1]], targets=targets, policy=load_policy("manylinux_2_28"))
render(report, io.StringIO())
print(report.verdict)
"""

_PYELFTOOLS_CHILD = """
import sys
from elftools.elf.elffile import ELFFile
with open(sys.argv[1], "rb") as f:
    elf = ELFFile(f)
    dynsym = elf.get_section_by_name(".dynsym")
    undefined = sum(1 for s in dynsym.iter_symbols() if s["st_shndx"] == "SHN_UNDEF")
print(undefined)
"""

_NAMES_CHILD = """
import sys
from rocstack.audit.elf import open_elf
mapped, elf = open_elf(sys.argv[1])
sys.stdout.write("\\n".join(s.name for s in elf.symbols()) + "\\n")
"""


def measure_peak(cmd: list[str], stdin: bytes | None = None) -> float:
    """Peak RSS of one run, measured in a fresh helper process so peers do not mask each other."""
    helper = (
        "import os, resource, subprocess, sys\n"
        "data = sys.stdin.buffer.read() if sys.argv[1] == '1' else None\n"
        "subprocess.run(sys.argv[2:], input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", helper, "1" if stdin else "0", *cmd], input=stdin,
                          capture_output=True, check=True)
    return float(done.stdout)


def timed(cmd: list[str], repeat: int, stdin: bytes | None = None) -> tuple[float, float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, input=stdin, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr[-400:]!r}")
        out = done.stdout
    return statistics.median(times), min(times), out


def bench(lib: str, repeat: int) -> list[dict]:
    rows = []
    nm = ["nm", "-gDCu", lib]
    objdump = ["objdump", "-TC", lib]
    nm_med, nm_min, _ = timed(nm, repeat)
    od_med, od_min, _ = timed(objdump, repeat)
    rows.append({"method": "upstream: nm -gDCu + objdump -TC", "median_s": nm_med + od_med, "min_s": nm_min + od_min,
                 "peak_rss_mib": max(measure_peak(nm), measure_peak(objdump))})

    child = [sys.executable, "-c", _PYELFTOOLS_CHILD, lib]
    med, low, _ = timed(child, max(1, repeat // 2))
    rows.append({"method": "pyelftools: iterate .dynsym", "median_s": med, "min_s": low,
                 "peak_rss_mib": measure_peak(child)})

    _, _, names = timed([sys.executable, "-c", _NAMES_CHILD, lib], 1)
    count = names.count(b"\n")
    cxxfilt = ["c++filt"]
    med, low, _ = timed(cxxfilt, repeat, stdin=names)
    rows.append({"method": f"c++filt batched ({count} names, one process)", "median_s": med, "min_s": low,
                 "peak_rss_mib": measure_peak(cxxfilt, stdin=names)})

    sample = names.split(b"\n")[:200]
    start = time.perf_counter()
    for name in sample:
        subprocess.run(cxxfilt, input=name + b"\n", capture_output=True, check=True)
    each = (time.perf_counter() - start) / len(sample)
    rows.append({"method": f"c++filt one process per name (x{count}, from {len(sample)} runs)",
                 "median_s": each * count, "min_s": each * count, "peak_rss_mib": float("nan")})

    child = [sys.executable, "-c", _AUDIT_CHILD, lib]
    inner, times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(child, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        inner.append(json.loads(done.stdout))
    audit = [i["audit_s"] for i in inner]
    peak = measure_peak(child)
    rows.append({"method": "rocstack run_audit (library call)", "median_s": statistics.median(audit),
                 "min_s": min(audit), "peak_rss_mib": peak, "note": f"verdict {inner[-1]['verdict']}"})
    rows.append({"method": "rocstack run_audit incl. python start+imports", "median_s": statistics.median(times),
                 "min_s": min(times), "peak_rss_mib": peak})

    child = [sys.executable, "-c", _TABLE_CHILD, lib]
    med, low, _ = timed(child, repeat)
    rows.append({"method": "rocstack run_audit + table, whole process (no CLI)", "median_s": med, "min_s": low,
                 "peak_rss_mib": measure_peak(child)})

    cli = [shutil.which("rocstack") or "rocstack", "audit", lib, "--policy", "manylinux_2_28", "--json"]
    med, low, _ = timed(cli, repeat)
    rows.append({"method": "rocstack audit CLI (--json)", "median_s": med, "min_s": low,
                 "peak_rss_mib": measure_peak(cli)})
    return rows


def cpu_rows(lib: str, repeat: int) -> list[list[str]]:
    """Whole-process CPU seconds (user + system): the comparison that survives a loaded machine."""
    commands = {
        "upstream: nm -gDCu": ["nm", "-gDCu", lib],
        "upstream: objdump -TC": ["objdump", "-TC", lib],
        "rocstack run_audit + table, whole process (no CLI)": [sys.executable, "-c", _TABLE_CHILD, lib],
        "rocstack audit CLI (--json)": [shutil.which("rocstack") or "rocstack", "audit", lib, "--policy",
                                        "manylinux_2_28", "--json"],
    }
    rows = []
    for name, cmd in commands.items():
        runs = [measured(cmd) for _ in range(repeat)]
        rows.append([name, f"{statistics.median(r[0] for r in runs):.3f}", f"{statistics.median(r[1] for r in runs):.3f}",
                     f"{max(r[2] for r in runs):.0f}"])
    return rows


def padded_copy(lib: str, gib: float, folder: str) -> str:
    """A copy of ``lib`` grown to ``gib`` GiB by an extra non-loaded section (objcopy --add-section)."""
    pad = os.path.join(folder, "pad.bin")
    size = int(gib * (1 << 30)) - os.path.getsize(lib)
    with open(pad, "wb") as handle:
        handle.truncate(max(size, 1))
    out = os.path.join(folder, os.path.basename(lib))
    subprocess.run(["objcopy", "--add-section", f".rocstack_pad={pad}", lib, out], check=True)
    os.remove(pad)
    # its siblings, so that $ORIGIN still finds the same DT_NEEDED closure
    source_dir = os.path.dirname(os.path.abspath(lib))
    for name in os.listdir(source_dir):
        if name != os.path.basename(lib):
            os.symlink(os.path.join(source_dir, name), os.path.join(folder, name))
    return out


def print_table(title: str, rows: list[dict]) -> None:
    lines = []
    for row in rows:
        note = f" ({row['note']})" if row.get("note") else ""
        rss = "-" if row["peak_rss_mib"] != row["peak_rss_mib"] else f"{row['peak_rss_mib']:.0f}"
        lines.append([row["method"] + note, f"{row['median_s']:.3f}", f"{row['min_s']:.3f}", rss])
    print_markdown(title, ["method", "median s", "min s", "peak RSS MiB"], lines)


def default_lib() -> str:
    try:
        import torch
    except ImportError:
        raise SystemExit("torch is not installed: pip install torch==2.13.0 (CPU wheel) or pass --lib") from None
    return os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", default=None, help="library to audit (default: torch's libtorch_cpu.so)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pad-gib", type=float, default=0.0, help="also audit a copy padded to this many GiB")
    parser.add_argument("--device", action="store_true",
                        help="also audit Debian's librocblas4 and hipBLASLt beside LLVM's tools (downloads ~440 MB once)")
    args = parser.parse_args()
    lib = args.lib or default_lib()
    if not os.path.isfile(lib):
        raise SystemExit(f"{lib} does not exist: pass --lib PATH")
    size = os.path.getsize(lib) / (1 << 20)
    print(f"library: {lib} ({size:.0f} MiB); {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print_table(f"{os.path.basename(lib)}, {args.repeat} runs each", bench(lib, args.repeat))
    print_markdown(f"{os.path.basename(lib)}: whole processes, median of {args.repeat} (load average "
                   f"{os.getloadavg()[0]:.1f})", ["method", "wall s", "CPU s", "peak RSS MiB"], cpu_rows(lib, args.repeat))
    if args.pad_gib:
        with tempfile.TemporaryDirectory(prefix="audit-bench-") as folder:
            big = padded_copy(lib, args.pad_gib, folder)
            big_size = os.path.getsize(big) / (1 << 30)
            print_table(f"same library padded to {big_size:.2f} GiB", bench(big, max(1, args.repeat // 2)))
    if args.device:
        from audit_device_bench import main as device

        device(max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
