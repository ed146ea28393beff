"""Time launch-config variants of registered kernels beside their peers, interleaved, on the GPU at hand.

    python kernels/scripts/sweep_configs.py PLAN.json [--rounds 3] [--json OUT]

PLAN is a JSON list of sweeps, each
``{"kernel": NAME, "case": CASE, "variants": {LABEL: OVERRIDE, ...}, "graph": false}``:
CASE is a bench case name as ``python -m rocstack_kernels.bench`` prints it, OVERRIDE a
dict of launch-config keys (the kernel's ``config=`` argument; ``BenchSetup.variant``).
Each sweep sets the case up once and times the shipped kernel, every variant, the
case's peers and a device copy of the same bytes in ``--rounds`` interleaved rounds
(``bench.interleaved_ms``: forward, reversed, ...; what ran just before sets the clock
a kernel starts at). With ``"graph": true`` every callable is captured in a CUDA graph
and replayed (GPU time only); without it, the host time per call is measured too
(up to 200 calls back to back, no synchronisation: while the GPU keeps up, that is
the launcher's host cost). Each variant's output is compared with the shipped
kernel's (relative error), so a fast but wrong variant shows as such; ``"check":
false`` skips that for kernels that work in place (rotary, add_rms_norm). Prints one line per
implementation; the winners go into the config tables by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def _host_us(fn, calls: int = 200) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


def _output(result):
    """The tensor an implementation returns (first of a tuple), cloned, or None."""
    if isinstance(result, tuple):
        result = result[0] if result and isinstance(result[0], torch.Tensor) else None
    return result.detach().float().clone() if isinstance(result, torch.Tensor) else None


def check_plan(plan) -> dict[int, object]:
    """Each sweep's bench case, by position; a plan naming an unknown kernel or case exits with one line."""
    from rocstack_kernels import registry

    if not isinstance(plan, list) or not all(isinstance(e, dict) and {"kernel", "case"} <= set(e) for e in plan):
        raise SystemExit("error: the plan must be a JSON list of {kernel, case, variants, graph} objects")
    found = {}
    for index, entry in enumerate(plan):
        try:
            cases = {case.name: case for case in registry.select(entry["kernel"])[0].bench_cases()}
        except ValueError as exc:
            raise SystemExit(f"error: sweep {index}: {exc}") from None
        if entry["case"] not in cases:
            raise SystemExit(f"error: sweep {index}: {entry['kernel']} has no bench case {entry['case']!r} - "
                             f"one of: {', '.join(cases)}")
        found[index] = cases[entry["case"]]
    return found


def sweep(entry: dict, case, rounds: int, copy_gbps: float, progress) -> list[dict]:
    from rocstack_kernels.graph_replay import GraphReplay
    from rocstack_kernels.bench import interleaved_ms
    from rocstack_kernels.testing import rel_err

    device = torch.device("cuda")
    kernel, case_name = entry["kernel"], entry["case"]
    setup = case.setup(device)
    if setup.variant is None and entry.get("variants"):
        raise SystemExit(f"error: {kernel} takes no config override - sweep its shipped config only")
    impls = {"shipped": setup.run}
    for label, override in entry.get("variants", {}).items():
        impls[label] = setup.variant(override)
    impls.update(setup.peers)
    graph = bool(entry.get("graph"))
    if setup.bytes_moved:
        elements = setup.bytes_moved // 4  # a copy of the same bytes: half read, half written, bf16
        src = torch.randn(elements, device=device, dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        copy = lambda: dst.copy_(src)  # noqa: E731
        # A case that replays its implementations from graphs itself (" graph") gets a replayed copy.
        impls["copy, same bytes"] = GraphReplay(copy) if case_name.endswith(" graph") and not graph else copy
    outputs, errors = {}, {}
    for name, fn in list(impls.items()):
        try:
            if graph:
                impls[name] = fn = GraphReplay(fn)
            outputs[name] = _output(fn())
        except Exception as exc:  # a variant that does not compile or launch is a result too
            text = str(exc).strip()
            errors[name] = f"{type(exc).__name__}: {text.splitlines()[0][:120] if text else ''}"
    times = interleaved_ms({name: fn for name, fn in impls.items() if name not in errors}, rounds=rounds)
    rows, reference = [], outputs.get("shipped")
    peer_names = [name for name in setup.peers]
    for name in impls:
        row = {"kernel": kernel, "case": case_name, "impl": name, "graph": graph,
               "override": entry.get("variants", {}).get(name)}
        result = errors.get(name) or times.get(name)
        if isinstance(result, (str, Exception)):
            row["error"] = str(result)
            rows.append(row)
            continue
        ms = statistics.median(result)
        row.update(ms=ms, ms_rounds=result)
        if setup.bytes_moved:
            row.update(gbps=setup.bytes_moved / ms / 1e6, pct_of_copy=100 * setup.bytes_moved / ms / 1e6 / copy_gbps)
        if setup.flops:
            row["tflops"] = setup.flops / ms / 1e9
        if not graph:  # at most ~10 ms of calls: past the GPU's own time the number is the GPU's
            row["host_us"] = _host_us(impls[name], calls=min(200, max(3, int(10 / ms))))
        checked = entry.get("check", True) and name not in peer_names
        if checked and reference is not None and outputs.get(name) is not None and outputs[name].shape == reference.shape:
            row["rel_err_vs_shipped"] = float(rel_err(outputs[name], reference))
        rows.append(row)
    best_peer = min((r["ms"] for r in rows if r["impl"] in peer_names and "ms" in r), default=None)
    for row in rows:
        if best_peer and "ms" in row:
            row["vs_best_peer"] = best_peer / row["ms"]
        progress(_line(row))
    del setup, impls, outputs
    torch.cuda.empty_cache()
    return rows


def _line(row: dict) -> str:
    head = f"{row['kernel']:<22} {row['case'][:36]:<36} {'graph' if row['graph'] else 'eager'} {row['impl'][:28]:<28}"
    if "error" in row:
        return f"{head} error: {row['error']}"
    rate = f"{row['gbps']:7.0f} GB/s {row['pct_of_copy']:4.0f}%" if "gbps" in row else f"{row['tflops']:7.0f} TFLOP/s"
    extra = "".join([f"  {row['vs_best_peer']:.3f}x peer" if "vs_best_peer" in row else "",
                     f"  host {row['host_us']:.0f} us" if "host_us" in row else "",
                     f"  err {row['rel_err_vs_shipped']:.1e}" if "rel_err_vs_shipped" in row else "",
                     "  rounds " + "/".join(f"{t * 1e3:.1f}" for t in row["ms_rounds"])])
    return f"{head} {row['ms'] * 1e3:8.1f} us {rate}{extra}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="JSON list of sweeps (see the module doc)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write every row here")
    parser.add_argument("--check", action="store_true", help="only check the plan's kernel and case names (no GPU)")
    args = parser.parse_args(argv)
    with open(args.plan) as handle:
        plan = json.load(handle)
    cases = check_plan(plan)
    if args.check:
        print(f"plan ok: {len(plan)} sweeps, {sum(len(e.get('variants', {})) for e in plan)} variants")
        return 0
    if not torch.cuda.is_available():
        print("error: no GPU visible to torch - run the sweep on a GPU machine", file=sys.stderr)
        return 2
    from rocstack_kernels.bench import measure_ceilings, write_json

    device = torch.device("cuda")
    ceilings = measure_ceilings(device)
    print(f"{torch.cuda.get_device_name(device)}: copy {ceilings['copy']:.0f} GB/s, "
          f"bf16 mm {ceilings['bf16_mm']:.0f} TFLOP/s", flush=True)
    rows: list[dict] = []
    for index, entry in enumerate(plan):
        try:
            rows.extend(sweep(entry, cases[index], args.rounds, ceilings["copy"], lambda line: print(line, flush=True)))
        except torch.OutOfMemoryError as exc:
            print(f"{entry['kernel']} {entry['case']}: out of memory ({exc})", flush=True)
        if args.json:  # after every sweep: a run cut short by its time limit keeps what it measured
            write_json({"device": torch.cuda.get_device_name(device), "ceilings": ceilings, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
