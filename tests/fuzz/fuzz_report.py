"""The fuzz run as a table: inputs per parser, how they ended, crashes."""

from __future__ import annotations

from fuzz_runner import Result


def table(results: list[Result]) -> list[str]:
    rows = [("target", "seeds", "inputs", "inputs/s", "parsed", "refused (accepted errors)", "crashes", "slowest")]
    for r in results:
        refused = ", ".join(f"{name} {count}" for name, count in r.outcomes.most_common()
                            if name not in ("parsed", "CRASH")) or "-"
        rows.append((r.target, str(r.seeds), str(r.inputs), f"{r.inputs / r.seconds:.0f}" if r.seconds else "-",
                     f"{r.outcomes['parsed'] / r.inputs:.0%}" if r.inputs else "-", refused, str(r.crash_count),
                     f"{r.slowest[0] * 1000:.0f} ms"))
    total = sum(r.inputs for r in results)
    rows.append(("total", "", str(total), "", "", "", str(sum(r.crash_count for r in results)), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines
