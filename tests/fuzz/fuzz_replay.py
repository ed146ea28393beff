"""Replay one fuzz input in this process, so its traceback (or its hang) shows under a debugger.

    python3 tests/fuzz/fuzz_replay.py CRASH_DIR                       # a saved crash (input.bin + crash.json)
    python3 tests/fuzz/fuzz_replay.py --target elf --index 1234 [--base-seed 0] [--save FILE]

Prints the seed, the mutation and the outcome; exits 1 when the input still crashes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_runner import make_input  # noqa: E402
from fuzz_targets import TARGETS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crash_dir", nargs="?", type=Path, help="a crash directory the fuzz test printed")
    parser.add_argument("--target", choices=sorted(TARGETS), help="regenerate an input of this target")
    parser.add_argument("--index", type=int, help="the input's index")
    parser.add_argument("--base-seed", default="0", help="ROCSTACK_FUZZ_SEED of the run (default 0)")
    parser.add_argument("--save", type=Path, help="also write the input's bytes here")
    args = parser.parse_args()
    if args.crash_dir:
        info = json.loads((args.crash_dir / "crash.json").read_text())
        target, seed, steps = TARGETS[info["target"]], info["seed"], info["mutation"]
        data = (args.crash_dir / "input.bin").read_bytes()
    elif args.target and args.index is not None:
        target = TARGETS[args.target]
        seed_obj, data, steps = make_input(target, target.seeds(), args.base_seed, args.index)
        seed = seed_obj.name
    else:
        parser.error("give a crash directory, or --target and --index")
    if args.save:
        args.save.write_bytes(data)
    print(f"target {target.name}, seed {seed}, {len(data)} bytes; mutation:")
    for step in steps:
        print(f"  {step}")
    with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as work:
        try:
            outcome = target.run(data, Path(work), seed)
        except Exception:  # noqa: BLE001 - the crash is what we came to see
            traceback.print_exc()
            return 1
    print(f"outcome: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
