"""Build benchmark on the default stack: cold build, no-op rebuild, rebuild after a kernel edit.

The kernel edit is a comment inside one @triton.jit function of rms_norm.py: Triton keys
a compiled kernel by its source, so it recompiles that kernel's specializations and the
kernel stage takes every other one from its persistent Triton cache (target: < 30 s).

    python benchmarks/build_bench.py [--arch gfx942] [--skip-cold]

Builds a frozen copy of the project (nobody's edits land mid-run) under a
throw-away ROCSTACK_HOME, with images named rocstack-bench/* (removed at the
end). Peers measured in the same run: a plain ``docker build`` of the very
same staged context (what rocstack adds on top of BuildKit) and the cold build
(what the cache saves). "Stages run" is read back from each build's log file.

Cold here means: debootstrap + import of a fresh base (under a bench tag) and
BuildKit ``--no-cache`` for every stage; pip's download cache mount stays warm,
so the first build on a brand-new machine also pays for downloads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFIX = "rocstack-bench"
EDITED = "kernels/rocstack_kernels/rms_norm.py"
NOOP_TARGET_S = 10.0
EDIT_TARGET_S = 30.0


def _timed_build(project: Path, arch: str, no_cache: bool = False) -> tuple[float, dict]:
    from rocstack.imaging.builder import build_image
    from rocstack.imaging.options import compute_build_options
    from rocstack.imaging.progress import parse_log
    from rocstack.log import silent
    from rocstack.recipes.catalog import Catalog

    started = time.monotonic()
    options = compute_build_options(stack="local", arch=arch, catalog=Catalog(project), no_cache=no_cache)
    result = build_image(options, silent())
    seconds = time.monotonic() - started
    stages = parse_log(Path(result.log).read_text()).stages_run()  # evidence from the log, not the live parser
    kernel_seconds = result.stages.get("build-rocstack-kernels", {}).get("seconds")
    return seconds, {"tags": result.tags, "log": result.log, "stages_run": stages, "image_id": result.image_id,
                     "kernel_stage_s": kernel_seconds}


def _edit_one_kernel(path: Path) -> str:
    """A comment inside the first @triton.jit function: that kernel's source (and cache key) changes."""
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("@triton.jit"))
    body = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("    ") and not lines[i - 1].rstrip().endswith(","))
    name = next(line.split("(")[0][4:] for line in lines[at:] if line.startswith("def "))
    lines.insert(body, f"    # build_bench edit {time.time()}\n")
    path.write_text("".join(lines))
    return name


def _plain_docker_build(context: Path) -> float:
    """The peer: the same staged context through the docker CLI alone (same secrets)."""
    from rocstack.engine import buildkit_cli
    from rocstack.imaging.index import build_secret_args, host_index_settings

    cli = buildkit_cli()
    with build_secret_args(host_index_settings()) as secrets:
        argv = [*cli.argv, "--progress=plain", *secrets, str(context)]
        started = time.monotonic()
        subprocess.run(argv, env=cli.environment(), check=True, capture_output=True)
        return time.monotonic() - started


def _aot_without_cache(project: Path, arch: str, out: Path) -> float:
    """The peer of the kernel edit: every specialization compiled again (the stage before --cache)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "TRITON_CACHE_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(project / "kernels"), env.get("PYTHONPATH", "")])
    env["TRITON_CACHE_DIR"] = str(out.parent / "triton-home-cache")  # the user's own cache must not help
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "rocstack.cli.program", "kernels", "build", "--arch", arch, "--out", str(out)],
                   env=env, check=True, capture_output=True, cwd=project)
    return time.monotonic() - started


def _cold_base_seconds(client) -> float:
    from rocstack.imaging.base import build_base
    from rocstack.recipes.catalog import Catalog

    result = build_base(client, Catalog(REPO).stack("local"), f"{PREFIX}/base:cold")
    client.images.remove(f"{PREFIX}/base:cold")
    return result.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="gfx942")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold build (minutes)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from rocstack.imaging.context import snapshot_project
    from rocstack.engine import connect

    work = Path(tempfile.mkdtemp(prefix="rocstack-bench-"))
    os.environ["ROCSTACK_HOME"] = str(work / "home")
    os.environ["ROCSTACK_IMAGE_PREFIX"] = PREFIX
    project = snapshot_project(REPO, work / "project")
    client = connect()
    rows, tags = [], set()

    def row(name, seconds, peer, peer_seconds, stages, target, ok):
        rows.append({"scenario": name, "rocstack_s": round(seconds, 1), "peer": peer,
                     "peer_s": None if peer_seconds is None else round(peer_seconds, 1),
                     "stages_run": stages, "target": target, "ok": ok})

    warm_s, warm = _timed_build(project, args.arch)  # brings the cache to this tree
    tags.update(warm["tags"])
    cold_s = None
    if not args.skip_cold:
        base_s = _cold_base_seconds(client)
        cold_s, cold = _timed_build(project, args.arch, no_cache=True)
        tags.update(cold["tags"])
        row("cold build (base + --no-cache)", base_s + cold_s, "debootstrap + import alone", base_s,
            cold["stages_run"], "report", True)
    noop_s, noop = _timed_build(project, args.arch)
    tags.update(noop["tags"])
    context = work / "home" / "contexts" / "local"
    row("no-op rebuild", noop_s, "plain docker build, same context", _plain_docker_build(context),
        noop["stages_run"], f"< {NOOP_TARGET_S:.0f} s", noop_s < NOOP_TARGET_S and noop["stages_run"] == [])
    function = _edit_one_kernel(project / EDITED)
    edit_s, edit = _timed_build(project, args.arch)
    tags.update(edit["tags"])
    expected = ["build-rocstack-kernels", "runtime"]
    aot_s = _aot_without_cache(project, args.arch, work / "aot-without-cache")
    row(f"kernel stage after editing {function}", edit["kernel_stage_s"] or 0.0,
        "all specializations compiled (no --cache)", aot_s, ["build-rocstack-kernels"], "fewer than all", True)
    row(f"rebuild after editing {function} ({EDITED})", edit_s, "cold build (--no-cache)", cold_s,
        edit["stages_run"], f"kernel + runtime, < {EDIT_TARGET_S:.0f} s",
        edit["stages_run"] == expected and edit_s < EDIT_TARGET_S)

    print(f"\nbuild benchmark: stack local, --arch {args.arch}, {os.cpu_count()} CPUs "
          f"(warm-up build {warm_s:.0f} s)\n")
    header = f"{'scenario':<58} {'rocstack':>9} {'peer':<34} {'peer':>7}  {'stages run (from the log)':<36} {'target':<22} ok"
    print(header)
    print("-" * len(header))
    for r in rows:
        peer_s = "-" if r["peer_s"] is None else f"{r['peer_s']:.1f}s"
        stages = ", ".join(r["stages_run"]) or "none"
        print(f"{r['scenario']:<58} {r['rocstack_s']:>8.1f}s {r['peer']:<34} {peer_s:>7}  {stages:<36} {r['target']:<22} "
              f"{'yes' if r['ok'] else 'NO'}")
    print(f"\nlogs: {work / 'home' / 'logs'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    for tag in sorted(tags):  # only the bench's own tags; shared layers stay
        try:
            client.images.remove(tag)
        except Exception:  # noqa: BLE001 - already gone: a no-op rebuild re-tags the same image
            pass
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
