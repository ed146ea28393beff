"""Benchmark harness: device ceilings and every registered kernel beside its peers, one run.

Measures, on the GPU at hand, the ceilings (device-to-device copy bandwidth counting
bytes read + written; bf16 8192^3 matmul; FP8 8192^3 ``torch._scaled_mm`` with
tensorwise scales), then each registry bench case: our kernel and its peers timed
with ``triton.testing.do_bench`` (CUDA events, median of repeats, after warm-up).
A case times its implementations in ``ROUNDS`` rounds, the order reversed every
other round, and reports each one's median over the rounds: under the card's power
cap the clock an implementation starts at depends on what ran just before it (on
the H100 a kernel timed right after cuDNN attention read up to 7% slower than the
same kernel timed later in the round), so a fixed order biases the ratios.
Prints a table (GB/s or TFLOP/s, % of the measured ceiling, ratio to the best peer),
and writes JSON and a plot when asked. Run as ``invoke bench`` or
``python -m rocstack_kernels.bench``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from rocstack_kernels import registry
from rocstack_kernels.registry import BenchSetup

SCHEMA = "rocstack.kernels-bench/v1"
ROUNDS = 3


def time_ms(fn: Callable[[], object], rep: int = 100) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=rep, return_mode="median"))


def interleaved_ms(impls: dict[str, Callable[[], object]], rounds: int = ROUNDS,
                   rep: int = 40) -> dict[str, list[float] | Exception]:
    """Each implementation's time in every round (rounds alternate forward and reversed order).

    An implementation that raises keeps its exception instead of times and is not run again.
    """
    results: dict[str, list[float] | Exception] = {name: [] for name in impls}
    names = list(impls)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            if isinstance(results[name], Exception):
                continue
            try:
                results[name].append(time_ms(impls[name], rep=rep))
            except Exception as exc:  # reported by the caller as that implementation's error
                results[name] = exc
    return results


def _copy_gbps(device: torch.device) -> float:
    """Device-to-device copy, bytes read + written; the buffers are freed on return."""
    src = torch.randn(2**29 // 2, device=device, dtype=torch.bfloat16)  # 512 MiB, far past L2
    dst = torch.empty_like(src)
    return 2 * src.numel() * src.element_size() / time_ms(lambda: dst.copy_(src)) / 1e6


def measure_ceilings(device: torch.device) -> dict[str, float | None]:
    """copy GB/s, bf16_mm and fp8_mm TFLOP/s measured now on ``device``."""
    from rocstack_kernels.target import target_of

    copy_gbps = _copy_gbps(device)
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    bf16_tflops = 2 * n**3 / time_ms(lambda: a @ b) / 1e9
    fp8_tflops = None
    fp8 = target_of(device).fp8_dtype()
    if fp8 is not None:
        a8, b8 = a.to(fp8), b.t().contiguous().to(fp8).t()
        one = torch.ones((), device=device)
        fp8_tflops = 2 * n**3 / time_ms(lambda: torch._scaled_mm(a8, b8, one, one, out_dtype=torch.bfloat16)) / 1e9
    return {"copy": copy_gbps, "bf16_mm": bf16_tflops, "fp8_mm": fp8_tflops}


def _rate(setup: BenchSetup, ms: float) -> tuple[float, str]:
    if setup.bytes_moved is not None:
        return setup.bytes_moved / ms / 1e6, "GB/s"
    return setup.flops / ms / 1e9, "TFLOP/s"


def _warm(impls: dict[str, Callable[[], object]]) -> dict[str, Exception]:
    """Call every implementation once before any is timed; the ones that raise, by name.

    First calls compile (Triton, torch.compile) and torch.compile starts its compile
    workers: on the H200 host that work, timed beside ours, made rms_norm 32768x1024
    read 38 us in the first round and 53-59 us in the rounds after torch.compile's
    first call (the kernel is host-bound there: ~45 us of launch per call).
    """
    failed: dict[str, Exception] = {}
    for name, fn in impls.items():
        try:
            fn()
        except Exception as exc:  # reported by the caller as that implementation's error
            failed[name] = exc
    torch.cuda.synchronize()
    return failed


def _case_rows(kernel: str, case: registry.BenchCase, device, ceilings: dict) -> list[dict]:
    setup = case.setup(device)
    rows = []
    impls = {"rocstack": setup.run, **setup.peers}
    failed = _warm(impls)
    timed = interleaved_ms({name: fn for name, fn in impls.items() if name not in failed})
    for impl in impls:
        times = failed.get(impl) or timed[impl]
        row = {"kernel": kernel, "case": case.name, "impl": impl}
        if isinstance(times, Exception):  # a peer that cannot run here is reported, not fatal
            text = str(times).strip()
            row.update(error=f"{type(times).__name__}: {text.splitlines()[0][:160] if text else ''}")
            rows.append(row)
            continue
        ms = statistics.median(times)
        rate, unit = _rate(setup, ms)
        ceiling = ceilings.get(setup.ceiling)
        row.update(ms=ms, ms_rounds=times, rate=rate, unit=unit, ceiling=setup.ceiling,
                   pct_of_ceiling=100 * rate / ceiling if ceiling else None)
        rows.append(row)
    peer_rates = [r["rate"] for r in rows[1:] if "rate" in r]
    if "rate" in rows[0] and peer_rates:
        rows[0]["ratio_to_best_peer"] = rows[0]["rate"] / max(peer_rates)
    del setup
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def device_info(device: torch.device) -> dict:
    """What the report says about the GPU: name, multiprocessors, memory, L2, runtime versions."""
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "multiprocessors": props.multi_processor_count,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "l2_mib": round(getattr(props, "L2_cache_size", 0) / 2**20, 1) or None,
            "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda, "hip": torch.version.hip}


def ceilings_line(ceilings: dict) -> str:
    return (f"ceilings: copy {ceilings['copy']:.0f} GB/s (read + write), bf16 mm {ceilings['bf16_mm']:.0f} TFLOP/s"
            + (f", fp8 mm {ceilings['fp8_mm']:.0f} TFLOP/s" if ceilings.get("fp8_mm") else ""))


def run(kernels: str | None = None, progress: Callable[[str], None] = print,
        partial: Callable[[dict], None] | None = None) -> dict:
    """Ceilings, then every case of the selected kernels; the report (``SCHEMA``).

    ``partial``, when given, receives the report so far after each kernel (a run cut
    short by a time limit keeps what it measured).
    """
    if not torch.cuda.is_available():
        raise ValueError("no GPU visible to torch: benchmarks need one (torch device 'cuda' on ROCm and NVIDIA)")
    device = torch.device("cuda")
    entries = registry.select(kernels)
    # torch.compile peers compile in this process: no pool of compile workers running
    # beside the timed launches (the generated kernels are the same).
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1
    info = device_info(device)
    progress(f"device: {info['name']} ({info['multiprocessors']} multiprocessors, {info['memory_gib']} GiB, "
             f"L2 {info['l2_mib']} MiB), torch {torch.__version__}, triton {__import__('triton').__version__}")
    progress("measuring device ceilings (copy, bf16 and fp8 matmul)...")
    ceilings = measure_ceilings(device)
    progress("  " + ceilings_line(ceilings))
    report = {"schema": SCHEMA, "device": torch.cuda.get_device_name(device), "device_info": info,
              "torch": torch.__version__, "triton": __import__("triton").__version__,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "ceilings": ceilings, "results": []}
    for entry in entries:
        for case in entry.bench_cases():
            progress(f"{entry.name}: {case.name}")
            report["results"].extend(_case_rows(entry.name, case, device, ceilings))
        if partial is not None:
            partial(report)
    return report


def format_table(report: dict) -> str:
    c = report["ceilings"]
    lines = [f"{report['device']}  torch {report['torch']}  triton {report['triton']}  {report['date']}",
             ceilings_line(c),
             f"{'kernel':<24} {'case':<34} {'impl':<26} {'ms':>8} {'rate':>14} {'%ceil':>6} {'vs best peer':>12}"]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['kernel']:<24} {r['case']:<34} {r['impl']:<26} error: {r['error']}")
            continue
        pct = f"{r['pct_of_ceiling']:.0f}%" if r.get("pct_of_ceiling") is not None else "-"
        ratio = f"{r['ratio_to_best_peer']:.2f}x" if "ratio_to_best_peer" in r else ""
        lines.append(f"{r['kernel']:<24} {r['case']:<34} {r['impl']:<26} {r['ms']:8.3f} "
                     f"{r['rate']:8.0f} {r['unit']:<7} {pct:>5} {ratio:>12}")
    return "\n".join(lines)


def write_json(report: dict | list, path: str) -> None:
    """``report`` as JSON at ``path``, through rocstack's one atomic writer: never half-written."""
    from rocstack.fsutil import write_atomic

    write_atomic(path, json.dumps(report, indent=1))


def write_plot(report: dict, path: str) -> None:
    """Per-kernel panels: every case's implementations as % of the measured ceiling, ours / best peer."""
    from rocstack_kernels.bench_plot import draw

    draw(report, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rocstack_kernels.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", help="comma list of kernel names (default: all registered)")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--plot", help="write a PNG plot here")
    args = parser.parse_args(argv)
    partial = (lambda report: write_json(report, args.json)) if args.json else None
    try:
        report = run(args.kernel, progress=lambda line: print(line, file=sys.stderr, flush=True), partial=partial)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_json(report, args.json)
    if args.plot:
        write_plot(report, args.plot)
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
