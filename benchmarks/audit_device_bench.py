"""Device-code part of benchmarks/audit_bench.py (``--device``): real ROCm libraries beside LLVM's tools.

Each row is one process, measured with os.wait4: wall seconds, CPU seconds (user + system:
the column to compare on a shared machine) and peak RSS.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import debian_packages as debian  # noqa: E402 - the tests' cached Debian downloads
from benchtools import measured, print_markdown  # noqa: E402

ROCBLAS4 = debian.Package("librocblas4", "6.4.4-4")  # 280 MB download, 3.9 GB unpacked

_AUDIT = """
import io, sys
from rocstack.arches import parse_arch_list
from rocstack.audit import run_audit
from rocstack.audit.table import render
report = run_audit([sys.argv[1]], targets=parse_arch_list(sys.argv[2]))
render(report, io.StringIO())
"""


def _row(name: str, runs: list[tuple[float, float, float]]) -> dict:
    return {"method": name, "wall_s": statistics.median(r[0] for r in runs),
            "cpu_s": statistics.median(r[1] for r in runs), "peak_rss_mib": max(r[2] for r in runs)}


def rocblas_rows(lib: Path, repeat: int) -> list[dict]:
    rows = []
    objdump = debian.sid_command(debian.LLVM21_TOOLS, "usr/lib/llvm-21/bin/llvm-objdump")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as folder:
        link = Path(folder) / lib.name
        link.symlink_to(lib)  # llvm-objdump writes the extracted code objects next to its input
        rows.append(_row("llvm-objdump-21 --offloading (extracts every code object)",
                         [measured([*objdump, "--offloading", str(link)], cwd=folder)]))
    rows.append(_row("rocstack run_audit --arch gfx90a + table, whole process",
                     [measured([sys.executable, "-c", _AUDIT, str(lib), "gfx90a"]) for _ in range(repeat)]))
    return rows


def hipblaslt_rows(library: Path, repeat: int) -> list[dict]:
    bundles = [p for p in sorted(library.iterdir()) if p.suffix in (".co", ".hsaco")
               and p.read_bytes()[:4] in (b"CCOB", b"__CL")]
    script = "\n".join(f"clang-offload-bundler-19 --list --type=o --input='{p}' >/dev/null" for p in bundles)
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
        handle.write(script + "\n")
    try:
        rows = [_row(f"clang-offload-bundler-19 --list, one process per bundle ({len(bundles)} files, lists only)",
                     [measured(["sh", handle.name])])]
    finally:
        os.unlink(handle.name)
    rows.append(_row("rocstack run_audit --arch gfx942 + table, whole process (every code object's metadata)",
                     [measured([sys.executable, "-c", _AUDIT, str(library), "gfx942"]) for _ in range(repeat)]))
    return rows


def print_rows(title: str, rows: list[dict]) -> None:
    print_markdown(title, ["method", "wall s", "CPU s", "peak RSS MiB"],
                   [[r["method"], f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}", f"{r['peak_rss_mib']:.0f}"] for r in rows])


def main(repeat: int) -> None:
    print(f"\nload average before the device runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    lib = debian.tree(ROCBLAS4) / "usr/lib/x86_64-linux-gnu/librocblas.so.4.4"
    print_rows(f"Debian librocblas4 {ROCBLAS4.version}: {lib.stat().st_size / (1 << 30):.2f} GiB, "
               "one .hip_fatbin of 66 bundles", rocblas_rows(lib, repeat))
    library = debian.tree(debian.HIPBLASLT) / "usr/lib/x86_64-linux-gnu/hipblaslt/library"
    print_rows(f"Debian libhipblaslt1 {debian.HIPBLASLT.version}: Tensile library/ directory",
               hipblaslt_rows(library, repeat))
