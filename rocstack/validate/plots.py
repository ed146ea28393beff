"""Performance figures as base64 PNG (matplotlib, Agg), for the self-contained HTML report.

Two figures:
- measured metric vs its recipe floor, one bar pair per perf check that ran;
- attention speedup vs sequence length (the seed's figure), from the kernel benchmark
  harness's rows (``rocstack.kernels-bench/v1``) for attention kernels.
"""

from __future__ import annotations

import base64
import io
import re
from collections import defaultdict


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def perf_floor_figure(checks: list[dict]) -> str | None:
    rows = [c for c in checks if c["category"] == "performance" and "value" in (c.get("details") or {})]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows)), 3.6))
    names = [c["name"].split(":", 2)[-1] for c in rows]
    ratios = [c["details"]["value"] / c["details"]["floor"] if c["details"]["floor"] else 0 for c in rows]
    colors = ["#2e7d32" if c["status"] == "pass" else "#c62828" for c in rows]
    ax.bar(range(len(rows)), ratios, color=colors)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="recipe floor")
    ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
    ax.set_ylabel("measured / floor")
    ax.set_title("Performance against the recipes' per-arch floors")
    ax.legend()
    return _png(fig)


_PREFILL = re.compile(r"\bS(?P<seq>\d+)\b.*\bd(?P<hd>\d+)\b\s+(?P<mask>\w+)")


def attention_series(benchmarks: dict | None) -> dict[str, list[tuple[int, float]]]:
    """Speedup of our attention over each peer, per (mask, head dim, peer), by sequence length.

    Reads ``rocstack.kernels-bench/v1`` rows: attention kernels' cases are named
    ``prefill B.. S<seq> H.. d<head_dim> <causal|full> ...``; speedup = our rate / the peer's.
    """
    rates: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in (benchmarks or {}).get("results") or []:
        if isinstance(row, dict) and "attention" in str(row.get("kernel", "")) and "rate" in row:
            rates[(row["kernel"], str(row.get("case", "")))][str(row.get("impl"))] = float(row["rate"])
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (kernel, case), by_impl in rates.items():
        match = _PREFILL.search(case)
        ours = by_impl.get("rocstack")
        if not match or not ours:
            continue
        for peer, rate in by_impl.items():
            if peer != "rocstack" and rate > 0:
                label = f"{kernel} {match['mask']} d{match['hd']} vs {peer}"
                series[label].append((int(match["seq"]), ours / rate))
    return {k: sorted(v) for k, v in series.items()}


def attention_speedup_figure(benchmarks: dict | None) -> str | None:
    series = attention_series(benchmarks)
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length")
    ax.set_ylabel("speedup over peer (x)")
    ax.set_title("Attention: speedup vs sequence length")
    ax.legend(fontsize="small")
    return _png(fig)
