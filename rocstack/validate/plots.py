"""Performance figures as base64 PNG (matplotlib, Agg), for the self-contained HTML report.

Two figures:
- measured metric vs its recipe floor, one bar pair per perf check that ran;
- attention speedup vs sequence length (the seed's figure), from benchmark rows whose
  ``kernel`` names attention and that carry ``seq_len`` plus either ``speedup`` or a
  pair of timings (``ms`` with ``peer_ms``) or rates (``tflops`` with ``peer_tflops``).
"""

from __future__ import annotations

import base64
import io
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


def _speedup(row: dict) -> float | None:
    if isinstance(row.get("speedup"), (int, float)):
        return float(row["speedup"])
    if row.get("ms") and row.get("peer_ms"):
        return float(row["peer_ms"]) / float(row["ms"])
    if row.get("tflops") and row.get("peer_tflops"):
        return float(row["tflops"]) / float(row["peer_tflops"])
    return None


def attention_series(benchmarks: dict | None) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in (benchmarks or {}).get("results") or []:
        if not isinstance(row, dict) or "attention" not in str(row.get("kernel", "")):
            continue
        seq_len, speedup = row.get("seq_len"), _speedup(row)
        if not isinstance(seq_len, (int, float)) or speedup is None:
            continue
        label = row.get("label") or " ".join(
            str(part) for part in (row.get("kernel"), "causal" if row.get("causal") else None,
                                   f"hd{row['head_dim']}" if row.get("head_dim") else None,
                                   f"vs {row['peer']}" if row.get("peer") else None) if part)
        series[label].append((int(seq_len), speedup))
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
