"""Compile some attention specializations for one arch and print their resource usage.

``python -m rocstack_kernels.attention.resource_check --arch gfx942 --match d128``
compiles (no GPU needed) every registered attention specialization whose label
contains each ``--match`` word, and prints one JSON object per line: kernel,
label, and the resources decoded from the code object (VGPRs, spills, LDS).
The full build is ``rocstack kernels build``; this is the quick check the tests
use to hold "no spills on gfx942 for hd128". Run it without TRITON_INTERPRET.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--kernel", default="flash_attention,paged_attention_decode", help="comma list")
    parser.add_argument("--match", action="append", default=[], help="word the label must contain (repeatable)")
    args = parser.parse_args(argv)

    from triton.runtime.cache import get_cache_manager

    from rocstack_kernels.aot import compile_specialization
    from rocstack_kernels.registry import select
    from rocstack_kernels.resources import decode
    from rocstack_kernels.target import parse_target

    target = parse_target(args.arch)
    kind = "hsaco" if target.is_hip else "cubin"
    for entry in select(args.kernel):
        for spec in entry.specializations(target):
            if not all(word in spec.label.split() for word in args.match):
                continue
            kernel, _, _ = compile_specialization(spec, target)
            blob = next(pathlib.Path(get_cache_manager(kernel.hash).cache_dir).glob(f"*.{kind}")).read_bytes()
            resources = decode(kind, blob, int(kernel.metadata.shared))
            print(json.dumps({"kernel": entry.name, "label": spec.label, "resources": resources}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
