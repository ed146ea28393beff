"""The kernels' tasks in the rocstack command: AOT build per arch, and benchmarks.

``rocstack kernels build --arch gfx942,sm90 --out DIR`` (``invoke kernels.build``)
compiles every registered kernel specialization for each target on a machine with
no GPU; ``rocstack bench`` times the kernels beside their peers on the GPU at hand.
rocstack finds this module through the ``rocstack.tasks`` entry point of the
rocstack-kernels distribution. It sits beside the ``rocstack_kernels`` package, not in
it, so loading the task list never imports torch and triton: they load when a task runs.
"""

from __future__ import annotations

from invoke import task

from rocstack.cli.common import require, user_errors
from rocstack.errors import RocstackError


def _kernels():
    try:
        import rocstack_kernels  # noqa: F401  (also activates ROCSTACK_KERNELS_PREBUILT)
        from rocstack_kernels import aot, bench as bench_lib, registry
        from rocstack_kernels.target import parse_targets
    except ImportError as exc:
        raise RocstackError(f"rocstack-kernels is not importable ({exc})",
                            "install it with `pip install -e kernels` (needs torch and triton)") from None
    return aot, bench_lib, registry, parse_targets


@task(auto_shortflags=False,
      help={"arch": "comma list of targets: gfx90a, gfx942, gfx950, gfx1100, ..., sm90 (NVIDIA) (required)",
            "out": "output directory (replaced): manifest.json + triton-cache/ (required)",
            "kernel": "comma list of kernel names (default: all registered)",
            "keep-ir": "also keep Triton's intermediate IR (ttir/ttgir/llir/ptx/amdgcn) next to the code objects",
            "runtime-python": "key the build for the triton of this Python (same triton version, other Python "
                              "ABI, e.g. the GPU machine's python3.12); default: this Python's triton",
            "cache": "Triton cache kept between builds: specializations of unchanged kernels are taken from it, "
                     "so an edit to one kernel recompiles only that kernel (ignored with --keep-ir)"})
@user_errors
def build(c, arch="", out="", kernel=None, keep_ir=False, runtime_python=None, cache=None):
    """Compile every kernel specialization for each --arch ahead of time (no GPU needed)."""
    require(arch, "--arch", "rocstack kernels build --arch gfx942 --out build/kernels")
    require(out, "--out", "rocstack kernels build --arch gfx942 --out build/kernels")
    aot, _, registry, parse_targets = _kernels()
    targets = parse_targets(arch)
    try:
        entries = registry.select(kernel)
        for target in targets:
            if target.backend == "interpreter":
                raise ValueError("'interpreter' is not a compile target")
    except ValueError as exc:
        raise RocstackError(str(exc), "run `rocstack kernels build --help` for the accepted values") from None
    try:
        manifest = aot.build(targets, out, entries, keep_ir=keep_ir, runtime_python=runtime_python, cache_dir=cache)
    except ValueError as exc:
        raise RocstackError(str(exc), "see `rocstack kernels build --help`") from None
    summary = manifest["summary"]
    print(f"{summary['built']} built ({manifest['from_cache']} from the cache), {summary['unsupported']} unsupported, "
          f"{summary['failed']} failed "
          f"-> {out}/manifest.json (use it with ROCSTACK_KERNELS_PREBUILT={out})")
    if summary["failed"]:
        failed = sorted({f"{e['kernel']}@{e['target']}" for e in manifest["entries"] if e["status"] == "failed"})
        raise RocstackError(f"{summary['failed']} specializations failed to compile: {', '.join(failed)}",
                            f"see the errors in {out}/manifest.json", exit_code=1)


@task(auto_shortflags=False,
      help={"kernel": "comma list of kernel names (default: all registered)",
            "json": "write the report as JSON here", "plot": "write a PNG plot here"})
@user_errors
def bench(c, kernel=None, json_=None, plot=None):
    """Benchmark the kernels beside torch eager / torch.compile / vendor peers on this GPU."""
    _, bench_lib, _, _ = _kernels()
    try:
        report = bench_lib.run(kernel)
    except ValueError as exc:
        raise RocstackError(str(exc), "run on a machine with a GPU; pick kernels with --kernel NAME") from None
    if json_:
        bench_lib.write_json(report, json_)
    if plot:
        bench_lib.write_plot(report, plot)
    print(bench_lib.format_table(report))


TASKS = [bench]
GROUPS = {"kernels": [build]}
