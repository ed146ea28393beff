"""Whole-process measurement and markdown tables shared by the benchmarks (run as scripts from benchmarks/)."""

from __future__ import annotations

import subprocess
import sys

_MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_pid, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
      os.waitstatus_to_exitcode(status))
"""


def measured(cmd: list[str], cwd: str | None = None) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MiB) of one process, started by a small helper (a child forked from
    this process would count this process's own pages in its peak RSS)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.split()
    wall, cpu, rss, code = float(out[0]), float(out[1]), float(out[2]), int(out[3])
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])} failed with {code}")
    return wall, cpu, rss


def print_markdown(title: str, header: list[str], lines: list[list[str]]) -> None:
    """A markdown table: first column left-aligned, the others right-aligned."""
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for line in lines:
        print("| " + " | ".join(line) + " |")
