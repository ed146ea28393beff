"""The bench report as a picture: one panel per kernel, one row per case.

Each row shows where every implementation lands as % of the ceiling measured in the
same run (copy bandwidth or matmul rate): ours as a large red dot, each peer as a
grey marker, a bar from the best peer to ours (green when ours is more than 2% faster,
red when more than 2% slower, grey within 2%: inside the run-to-run spread) and, at
the right, ours / best peer. Panels are laid out in two columns of
about equal height, so a run of ~60 cases is one screen, not a column of bars.

``panels(report)`` is the pure part (grouping, ratios, layout), ``draw(report, path)``
renders it with matplotlib's Agg backend.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from rocstack.fsutil import write_atomic

OURS = "rocstack"
CEILING_NAMES = {"copy": "% of device copy bandwidth", "bf16_mm": "% of bf16 matmul rate",
                 "fp8_mm": "% of FP8 matmul rate"}
# Peers keep one marker each across panels, so a legend entry means one thing.
_PEER_MARKERS = ("^", "s", "v", "D", "P", "X", "<", ">")
TIE = 0.02  # ratios within 2% of 1 are drawn as ties
_HEADER_ROWS = 3  # grid rows above each panel: its title and the panel above's tick labels


def verdict_color(ratio: float) -> str:
    return "tab:green" if ratio > 1 + TIE else "tab:red" if ratio < 1 - TIE else "0.4"


@dataclass
class Row:
    case: str
    ours: float | None                       # % of ceiling
    peers: dict[str, float] = field(default_factory=dict)
    ratio: float | None = None               # ours / best peer (rates)


@dataclass
class Panel:
    kernel: str
    ceiling: str
    rows: list[Row]


def _short(case: str) -> str:
    return case.replace(" bf16", "").replace("prefill ", "").replace("decode ", "")


def panels(report: dict) -> list[Panel]:
    """Rows of the report grouped per kernel, in report order; cases without our rate are dropped."""
    grouped: dict[str, dict[str, Row]] = {}
    ceilings: dict[str, str] = {}
    for result in report["results"]:
        if result.get("pct_of_ceiling") is None:
            continue
        kernel, case = result["kernel"], _short(result["case"])
        row = grouped.setdefault(kernel, {}).setdefault(case, Row(case, None))
        ceilings.setdefault(kernel, result["ceiling"])
        if result["impl"] == OURS:
            row.ours = result["pct_of_ceiling"]
            row.ratio = result.get("ratio_to_best_peer")
        else:
            row.peers[result["impl"]] = result["pct_of_ceiling"]
    return [Panel(kernel, ceilings[kernel], [row for row in rows.values() if row.ours is not None])
            for kernel, rows in grouped.items() if any(row.ours is not None for row in rows.values())]


def columns(items: list[Panel], count: int = 2) -> list[list[Panel]]:
    """Panels in ``count`` columns of about equal height, report order kept within a column.

    Greedy over the panels largest first; each column then lists its panels in report order.
    """
    heights = [0] * count
    chosen: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(items)), key=lambda i: -(len(items[i].rows) + _HEADER_ROWS)):
        column = heights.index(min(heights))
        chosen[column].append(index)
        heights[column] += len(items[index].rows) + _HEADER_ROWS
    return [[items[i] for i in sorted(indices)] for indices in chosen if indices]


def draw(report: dict, path: str) -> None:
    """Write the plot as PNG at ``path`` (temporary file first: never half-written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    layout = columns(panels(report))
    if not layout:
        raise ValueError("the report has no measured rate of ours to plot")
    peer_names = sorted({name for column in layout for panel in column for row in panel.rows for name in row.peers})
    markers = {name: _PEER_MARKERS[i % len(_PEER_MARKERS)] for i, name in enumerate(peer_names)}
    units = [sum(len(panel.rows) + _HEADER_ROWS for panel in column) for column in layout]
    height = 1.9 + 0.22 * max(units)
    fig = plt.figure(figsize=(8.5 * len(layout), height))
    grid = fig.add_gridspec(max(units), len(layout), left=0.13, right=0.95, top=1 - 1.2 / height,
                            bottom=0.45 / height, wspace=0.55, hspace=0.0)
    for col, column in enumerate(layout):
        top = 0
        for index, panel in enumerate(column):
            span = len(panel.rows) + _HEADER_ROWS
            ax = fig.add_subplot(grid[top + _HEADER_ROWS - 1:top + span, col])
            top += span
            _panel(ax, panel, markers)
            if index == len(column) - 1:
                ax.set_xlabel("% of the ceiling measured in this run", fontsize=8)
    c = report["ceilings"]
    ceiling_text = f"copy {c['copy']:.0f} GB/s, bf16 matmul {c['bf16_mm']:.0f} TFLOP/s" + (
        f", FP8 matmul {c['fp8_mm']:.0f} TFLOP/s" if c.get("fp8_mm") else "")
    fig.suptitle(f"rocstack kernels vs peers - {report['device']} - {report['date'][:10]}\n"
                 f"ceilings measured in the run: {ceiling_text}", fontsize=11, y=1 - 0.1 / height)
    handles = [Line2D([], [], marker="o", color="tab:red", linestyle="", markersize=8, label="rocstack")]
    handles += [Line2D([], [], marker=markers[name], color="0.45", linestyle="", markersize=6, label=name)
                for name in peer_names]
    handles += [Line2D([], [], color="tab:green", linewidth=4, alpha=0.5, label=f"ours > {1 + TIE:.2f}x best peer"),
                Line2D([], [], color="0.4", linewidth=4, alpha=0.5, label="within 2%"),
                Line2D([], [], color="tab:red", linewidth=4, alpha=0.5, label=f"ours < {1 - TIE:.2f}x best peer")]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 7), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.55 / height))
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, png.getvalue())


def _panel(ax, panel: Panel, markers: dict[str, str]) -> None:
    rows = panel.rows
    ys = range(len(rows))
    right = max(110.0, *(max([row.ours, *row.peers.values()]) + 8 for row in rows))
    for y, row in zip(ys, rows):
        if row.peers:
            best = max(row.peers.values())
            ax.plot([best, row.ours], [y, y], color=verdict_color(row.ours / best if best else 1.0),
                    linewidth=5, alpha=0.45, solid_capstyle="butt", zorder=1)
        for name, pct in row.peers.items():
            ax.plot(pct, y, marker=markers[name], color="0.45", markersize=5, linestyle="", zorder=2)
        ax.plot(row.ours, y, marker="o", color="tab:red", markersize=7, linestyle="", zorder=3)
        if row.ratio is not None:
            ax.text(1.01, y, f"{row.ratio:.2f}x", transform=ax.get_yaxis_transform(), va="center", fontsize=8,
                    color=verdict_color(row.ratio), fontweight="bold")
    ax.axvline(100, color="0.3", linewidth=0.8, linestyle=":")
    ax.set_yticks(list(ys), [row.case for row in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, right)
    ax.grid(axis="x", alpha=0.25)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"{panel.kernel}  -  {CEILING_NAMES.get(panel.ceiling, panel.ceiling)}", fontsize=9,
                 loc="left", fontweight="bold")
    ax.text(1.01, 1.0, "ours /\nbest peer", transform=ax.transAxes, va="bottom", fontsize=7, color="0.3")
