"""Benchmark: `rocstack validate --image` of a 2+ GB image rocstack did not build, beside the obvious peers.

The image (built once, cached by tag): Debian sid with Debian's ROCm 7.2.4 rocBLAS, hipBLASLt
and RCCL (the libraries hold ~2 GB of device code: a 1 GB .hip_fatbin, 700+ code-object
files), on the any-image test base. Measured in the same run, each in its own process:

- rocstack: ``rocstack validate --image IMG --arch gfx942`` end to end (export, static audit,
  in-image checks), wall time, CPU time and peak RSS (``/usr/bin/time -v``), and the bytes
  it kept on disk (the extraction's own count);
- peer ``docker export | tar -x``: the whole filesystem written to disk (what an audit of an
  exported container needs without selective extraction);
- peer ``docker save``: the image's layers as one archive on disk (what layer streaming reads).

    python benchmarks/validate_bench.py [--image TAG]   # prints a table; run on a quiet machine
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIG_DEBS = ("librocblas5=7.2.4-1~exp1", "libhipblaslt1=7.2.4+dfsg-1~exp1", "librccl1=7.2.4-1~exp3",
            "libamdhip64-7=7.2.4-1~exp2", "libhsa-runtime64-1=7.2.4+dfsg-1~exp1")


def ensure_big_image() -> str:
    sys.path.insert(0, str(REPO / "tests" / "validate"))
    import docker

    import anyimage_images as images

    client = docker.from_env(timeout=1800)
    base = images.ensure_base(client)
    debs = images.download_debs(BIG_DEBS)
    tag = f"rocstack-valtest-any-big:{images._key(base, BIG_DEBS)}"
    if not images._has_image(client, tag):
        images.build_context_image(client, tag, f"FROM {base}\nCOPY debs/ /tmp/debs/\n"
                                   "RUN dpkg -i --force-depends /tmp/debs/*.deb && rm -rf /tmp/debs\n", {"debs": debs})
    return tag


def _timed(argv: list[str], **kw) -> dict:
    """Wall, user+sys CPU and peak RSS of one command, from GNU time."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, **kw)
    wall = time.monotonic() - start
    stats = dict(re.findall(r"^\s*([^:\n]+):\s*(.+)$", proc.stderr, re.M))
    cpu = float(stats.get("User time (seconds)", 0)) + float(stats.get("System time (seconds)", 0))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": int(stats.get("Maximum resident set size (kbytes)", 0)) / 1024,
            "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def _du(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="validate this image instead of the built one")
    args = parser.parse_args(argv)
    tag = args.image or ensure_big_image()
    import docker

    size = docker.from_env().images.get(tag).attrs["Size"]
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
        run = _timed(["rocstack", "validate", "--image", tag, "--arch", "gfx942", "--json"], cwd=REPO)
        report = json.loads(run["stdout"]) if run["stdout"].strip().startswith("{") else {}
        kept = (report.get("filesystem") or {}).get("file_bytes", 0)
        rows.append(("rocstack validate --image (selective export)", run, kept,
                     f"verdict {report.get('verdict')}, {len(report.get('checks') or [])} checks"))
        out = Path(tmp) / "export"
        out.mkdir()
        create = subprocess.run(["docker", "create", tag, "/never-started"], capture_output=True, text=True, check=True)
        cid = create.stdout.strip()
        try:
            peer = _timed(["sh", "-c", f"docker export {cid} | tar -x -C {out} 2>/dev/null; true"])
        finally:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        rows.append(("docker export | tar -x (whole filesystem)", peer, _du(str(out)), "no audit"))
        shutil.rmtree(out, ignore_errors=True)
        saved = Path(tmp) / "image.tar"
        peer = _timed(["docker", "save", "-o", str(saved), tag])
        rows.append(("docker save (layers archive)", peer, saved.stat().st_size if saved.exists() else 0, "no audit"))
    print(f"image {tag}: {size / 2**30:.2f} GiB; 2 cores; load average before the run {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    print(f"{'method':<46} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'disk MiB':>9}  note")
    for name, stats, disk, note in rows:
        print(f"{name:<46} {stats['wall_s']:>8.1f} {stats['cpu_s']:>8.1f} {stats['peak_rss_mib']:>13.0f} "
              f"{disk / 2**20:>9.0f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
