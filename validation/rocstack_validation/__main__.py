"""``python -m rocstack_validation``: run the suite and write its JSON.

Exit 0 when the suite ran (whatever the checks found: the host judges the verdict),
2 when it could not start (no manifest, no recipes) with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rocstack.fsutil import write_atomic
from rocstack_validation.context import MANIFEST_PATH, ContextError, image_context, local_context
from rocstack_validation.suite import run_suite


def _write(data: dict, out: str) -> None:
    text = json.dumps(data, indent=2, default=str)
    if out == "-":
        sys.stdout.write(text + "\n")
        return
    write_atomic(Path(out), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rocstack-validation", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="-", help="where to write the suite JSON (default: stdout)")
    parser.add_argument("--local", action="store_true", help="validate this environment against a stack definition")
    parser.add_argument("--stack", help="stack for --local (default: the default stack)")
    parser.add_argument("--arch", help="arches for --local (default: the stack's default arches)")
    parser.add_argument("--manifest", default=str(MANIFEST_PATH), help="build manifest (image mode)")
    args = parser.parse_args(argv)
    try:
        context = local_context(args.stack, args.arch) if args.local else image_context(Path(args.manifest))
    except ContextError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _write(run_suite(context), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
