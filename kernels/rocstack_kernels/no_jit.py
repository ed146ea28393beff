"""Prove that an AOT build makes every registered kernel launch without compiling.

Run on a GPU, with a build made (anywhere, e.g. on a CPU machine) by the same triton:

    rocstack kernels build --arch sm90 --out DIR                 # on the CPU machine
    python -m rocstack_kernels.no_jit --prebuilt DIR [--json F]   # on the GPU machine

It activates DIR (``rocstack_kernels.use_prebuilt``: relocate Triton's group files,
point TRITON_CACHE_DIR at it), installs Triton's compilation listener, which is told
of every kernel request and whether the cache held it, then runs every registered
kernel once on each of its bench cases. A cache miss is a compile at run time:
any miss makes it exit 1. ``rocstack validate`` runs it as the ``no-jit`` check on a GPU
(kernels/scripts/prove_no_jit.py is the same entry point). Host-side launcher stubs (small C modules Triton
builds per kernel signature for the CPU side of a launch, not GPU code) are counted
and reported separately.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter


def _ours(src) -> bool:
    """Is this compile one of rocstack_kernels' own jit functions (not a peer's generated kernel)?"""
    fn = getattr(src, "fn", None)
    # a JITFunction names its module; wrappers (the interpreter's) hold the python function as .fn
    modules = (getattr(fn, "module", None), getattr(getattr(fn, "fn", None), "__module__", None))
    return any(str(m or "").startswith("rocstack_kernels") for m in modules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prebuilt", required=True, help="directory made by `rocstack kernels build`")
    parser.add_argument("--kernel", help="comma list of kernel names (default: all registered)")
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():  # a one-line refusal, never a traceback from a kernel launch
        print("error: no GPU is visible (torch.cuda.is_available() is False): the no-JIT proof loads kernels on a GPU",
              file=sys.stderr)
        return 2
    import triton
    import triton.runtime.build as triton_build

    import rocstack_kernels
    from rocstack_kernels import registry

    from rocstack_kernels.cache_key import local_basis
    from rocstack_kernels.prebuilt import read_manifest

    print(f"this machine's triton key basis: {local_basis()}")
    print(f"the build's key basis:           {read_manifest(args.prebuilt).get('key_basis')}")
    try:
        cache_dir = rocstack_kernels.use_prebuilt(args.prebuilt)
    except ValueError as exc:
        print(f"error: {exc}")
        return 1
    hits: Counter = Counter()
    misses: Counter = Counter()
    peer_compiles: Counter = Counter()

    def listener(*, src, metadata, metadata_group, times, cache_hit):
        name = getattr(src, "name", str(src))
        if not _ours(src):
            # a peer's kernel (torch.compile's Inductor, warmed up in the case setup): not ours to load
            peer_compiles[name] += not cache_hit
            return
        (hits if cache_hit else misses)[name] += 1

    host_builds: list[str] = []
    original_build = triton_build._build

    def counting_build(name, *rest, **kwargs):
        host_builds.append(name)
        return original_build(name, *rest, **kwargs)

    triton.knobs.compilation.listener = listener
    triton_build._build = counting_build
    device = torch.device("cuda")
    per_kernel = {}
    errors = {}
    for entry in registry.select(args.kernel):
        before_hits, before_misses = sum(hits.values()), sum(misses.values())
        try:
            for case in entry.bench_cases():
                setup = case.setup(device)
                setup.run()
                torch.cuda.synchronize()
                del setup
                torch.cuda.empty_cache()
        except Exception as exc:  # one broken kernel must not hide the others' results
            errors[entry.name] = f"{type(exc).__name__}: {exc}"[:300]
        per_kernel[entry.name] = {"loaded_from_build": sum(hits.values()) - before_hits,
                                  "compiled_at_run_time": sum(misses.values()) - before_misses}
    report = {"prebuilt": str(cache_dir), "triton": triton.__version__, "device": torch.cuda.get_device_name(),
              "kernels": per_kernel, "errors": errors, "compiled_functions": dict(misses), "loaded_functions": dict(hits),
              "peer_compiles_not_counted": dict(peer_compiles),
              "host_launcher_stubs_built": len(host_builds)}
    if args.json:
        from rocstack.fsutil import write_atomic

        write_atomic(args.json, json.dumps(report, indent=1))
    print(f"{'kernel':<26} {'loaded from build':>18} {'compiled at run time':>21}")
    for name, counts in per_kernel.items():
        print(f"{name:<26} {counts['loaded_from_build']:>18} {counts['compiled_at_run_time']:>21}")
    for name, error in errors.items():
        print(f"{name}: ERROR {error}")
    total = sum(misses.values())
    print(f"GPU kernel compiles at run time: {total}  (host launcher stubs built: {len(host_builds)})")
    if misses:
        print("compiled: " + ", ".join(f"{name} x{count}" for name, count in misses.items()))
    return 1 if total or errors else 0


if __name__ == "__main__":
    sys.exit(main())
