"""The effective-arch ledger: which arches a component's build really produced, per bundle.

Arch lists get dropped silently (vllm#22590: a CMake list that never reached hipcc; vllm
PR #36499: an arch filtered out by a version check), and the image then fails at run time
with hipErrorNoBinaryForGpu. So every ``toolchain: rocm`` builder stage ends with

    python -m rocstack.imaging.ledger --component NAME --targets "$ROCSTACK_ARCHES" \\
        --marker /out/rocstack-build/NAME.json OUTPUT...

which reads the outputs with rocstack's audit (every ``.hip_fatbin`` bundle, as the HIP
runtime registers them, and plain code-object files), records what each file carries in
the component's build marker (the build manifest copies it), and fails the stage - naming
the component and the file - when a requested target is missing from any bundle, or when
the outputs carry no device code at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field

from rocstack.arches import TargetID, parse_arch_list


@dataclass(frozen=True)
class OutputCode:
    """The device code of one output file: the target IDs of each bundle (one entry for a code-object file)."""

    file: str
    bundles: tuple[tuple[str, ...], ...]
    code_object_file: bool = False  # a plain code object (.hsaco/.co), not a library with .hip_fatbin


@dataclass
class Ledger:
    component: str
    requested: list[str]
    outputs: list[dict] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"requested": self.requested, "effective": self.effective, "outputs": self.outputs,
                "problems": self.problems}


def _parse_target(text: str) -> TargetID | None:
    processor, *parts = text.split(":")
    try:
        return TargetID(processor, tuple(sorted((p[:-1], p[-1]) for p in parts if p[-1:] in "+-")))
    except (TypeError, ValueError):
        return None


def _covers(codes: tuple[str, ...], wanted: TargetID) -> bool:
    targets = [t for t in (_parse_target(c) for c in codes) if t is not None]
    return any(t.runs_on(wanted) for t in targets)


def judge(component: str, requested: list[TargetID], outputs: list[OutputCode]) -> Ledger:
    """Pure: compare what the outputs carry with the requested targets."""
    ledger = Ledger(component, [str(t) for t in requested])
    with_code = [o for o in outputs if o.bundles]
    if not with_code:
        ledger.problems.append(
            f"{component}: its outputs carry no GPU code object at all: "
            f"the arch list ({', '.join(ledger.requested)}) never reached the compiler")
        return ledger
    for out in with_code:
        every = set.intersection(*(set(b) for b in out.bundles))
        some = set().union(*(set(b) for b in out.bundles))
        ledger.outputs.append({"file": out.file, "bundles": len(out.bundles), "targets": sorted(every),
                               "partial": sorted(some - every)})
        for wanted in requested:
            lacking = [i for i, bundle in enumerate(out.bundles) if not _covers(bundle, wanted)]
            if lacking:
                which = ("the code object is for" if out.code_object_file else
                         f"{len(lacking)} of its {len(out.bundles)} bundle(s) (#{', #'.join(map(str, lacking[:8]))}) carry only")
                ledger.problems.append(
                    f"{component}: requested {wanted} is missing from {out.file}: {which} "
                    f"{', '.join(sorted(set().union(*(set(out.bundles[i]) for i in lacking)))) or 'host code'}")
    # the requested targets every bundle of every output runs on (an "any" code object covers xnack-)
    ledger.effective = [str(w) for w in requested
                        if all(_covers(b, w) for out in with_code for b in out.bundles)]
    return ledger


def read_outputs(paths: list[str]) -> list[OutputCode]:
    """Every output under ``paths`` (wheels unpacked) that carries device code, as rocstack's audit models it:
    a library's units are its bundles (the runtime needs every one); a kernel set's or a kernel database's
    files count together (the runtime looks up one of them). Outputs without device code are left out."""
    from rocstack.audit import run_audit
    from rocstack.audit.devicecode import LIBRARY

    existing = [p for p in paths if os.path.exists(p)]
    if not existing:
        return []
    report = run_audit(existing, targets=[])
    rows = report.coverage.rows if report.coverage is not None else []
    out = []
    for row in rows:
        if row.kind == LIBRARY:
            out.append(OutputCode(row.name, tuple(tuple(sorted(set(u.targets))) for u in row.units)))
        else:
            union = tuple(sorted({t for u in row.units for t in u.targets}))
            out.append(OutputCode(row.name, (union,), code_object_file=True))
    return out


def record(marker: str, ledger: Ledger) -> None:
    """Add the ledger to the component's build marker (rocstack-jobs wrote it at the start of the stage)."""
    try:
        with open(marker) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {"component": ledger.component}
    data["ledger"] = ledger.to_json()
    tmp = marker + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, marker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rocstack.imaging.ledger",
                                     description="Check that a component's outputs carry every requested GPU target, per bundle, and record it.")
    parser.add_argument("--component", required=True)
    parser.add_argument("--targets", required=True, help="comma list of target IDs ($ROCSTACK_ARCHES)")
    parser.add_argument("--marker", required=True, help="the component's build marker JSON")
    parser.add_argument("outputs", nargs="+", help="output directories, files or wheels")
    args = parser.parse_args(argv)
    from rocstack.errors import RocstackError

    try:
        requested = parse_arch_list(args.targets)
    except RocstackError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    ledger = judge(args.component, requested, read_outputs(args.outputs))
    record(args.marker, ledger)
    for item in ledger.outputs:
        partial = f" (some bundles also: {', '.join(item['partial'])})" if item["partial"] else ""
        print(f"ledger {args.component}: {item['file']}: {item['bundles']} bundle(s), every one carries "
              f"{', '.join(item['targets']) or 'nothing'}{partial}")
    if ledger.problems:
        for problem in ledger.problems:
            print(f"error: {problem} - check the recipe's arch_flags and that the build passes them to hipcc", file=sys.stderr)
        return 1
    print(f"ledger {args.component}: requested {', '.join(ledger.requested)}; effective {', '.join(ledger.effective)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
