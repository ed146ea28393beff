"""The coverage matrix of a report (rows: libraries, kernel sets, kernel databases; columns: arches).

The audit builds it (``coverage``: ``{arches, rows: [{name, kind, component, sources,
cells: {arch: {status, sources, detail, archives}}}], components}``; ``archives``: the kpack
archives a kpack-split library's code comes from); validation keeps it in the
report as is and renders it: a Markdown table, an HTML heat map. Read defensively: a
report whose audit built no matrix says "not available", never an empty pass.
"""

from __future__ import annotations

import html

SYMBOL = {"covered": "✓", "partial": "partial", "missing": "✗"}
COLOR = {"covered": "#2e7d32", "partial": "#f9a825", "missing": "#c62828"}
MAX_ROWS = 400


def rows_of(coverage: dict | None) -> tuple[list[str], list[dict]]:
    if not isinstance(coverage, dict):
        return [], []
    arches = [a for a in coverage.get("arches") or [] if isinstance(a, str)]
    rows = [r for r in coverage.get("rows") or [] if isinstance(r, dict) and isinstance(r.get("cells"), dict)]
    return arches, rows


def _status(row: dict, arch: str) -> str:
    cell = row["cells"].get(arch)
    return cell.get("status", "?") if isinstance(cell, dict) else str(cell or "?")


def _sources(row: dict) -> str:
    """The kinds of source (fatbin, kpack, ...), and for kpack the archives the code comes from."""
    cells = [c for c in row["cells"].values() if isinstance(c, dict)]
    sources = row.get("sources") or sorted({s for c in cells for s in c.get("sources") or []})
    archives = sorted({str(a).rsplit("/", 1)[-1] for c in cells for a in c.get("archives") or []})
    text = ", ".join(map(str, sources)) or "-"
    return text + (f" ({', '.join(archives)})" if archives else "")


def totals(coverage: dict | None) -> dict[str, dict[str, int]]:
    """arch -> {covered, partial, missing} row counts (the comparison's one-line view)."""
    arches, rows = rows_of(coverage)
    out = {a: {"covered": 0, "partial": 0, "missing": 0} for a in arches}
    for row in rows:
        for arch in arches:
            status = _status(row, arch)
            if status in out[arch]:
                out[arch][status] += 1
    return out


def coverage_markdown(coverage: dict | None) -> list[str]:
    arches, rows = rows_of(coverage)
    if not rows:
        return ["## Coverage", "", "not available: the audit built no coverage matrix (no device code was read, "
                "or this rocstack's audit does not build one)"]
    lines = ["## Coverage (library × arch)", "", "| library | kind | source | " + " | ".join(arches) + " |",
             "|---|---|---|" + "---|" * len(arches)]
    for row in rows[:MAX_ROWS]:
        cells = " | ".join(SYMBOL.get(_status(row, a), _status(row, a)) for a in arches)
        name = str(row.get("name", "?")).replace("|", "\\|")
        lines.append(f"| `{name}` | {row.get('kind', '-')} | {_sources(row)} | {cells} |")
    if len(rows) > MAX_ROWS:
        lines.append(f"| … {len(rows) - MAX_ROWS} more rows in report.json | | | " + " | ".join("" for _ in arches) + " |")
    return lines


def coverage_html(coverage: dict | None) -> str:
    arches, rows = rows_of(coverage)
    if not rows:
        return ("<h2>Coverage</h2><p>Not available: the audit built no coverage matrix (no device code was read, "
                "or this rocstack's audit does not build one).</p>")
    head = "".join(f"<th>{html.escape(a)}</th>" for a in arches)
    body = []
    for row in rows[:MAX_ROWS]:
        cells = []
        for arch in arches:
            cell = row["cells"].get(arch) if isinstance(row["cells"].get(arch), dict) else {}
            status = _status(row, arch)
            tip = "; ".join(filter(None, [status, ", ".join(map(str, cell.get("sources") or [])),
                                          ", ".join(map(str, cell.get("archives") or [])), cell.get("detail", "")]))
            cells.append(f"<td class='cell' style='background:{COLOR.get(status, '#9e9e9e')}' "
                         f"title='{html.escape(tip, quote=True)}'>{html.escape(SYMBOL.get(status, status))}</td>")
        body.append(f"<tr><td>{html.escape(str(row.get('name', '?')))}</td><td>{html.escape(str(row.get('kind', '-')))}</td>"
                    f"<td>{html.escape(_sources(row))}</td>{''.join(cells)}</tr>")
    more = f"<p>{len(rows) - MAX_ROWS} more rows in report.json</p>" if len(rows) > MAX_ROWS else ""
    legend = " ".join(f"<span class='cell' style='background:{c}'>{s}</span>" for s, c in COLOR.items())
    return (f"<h2>Coverage (library × arch)</h2><p>{legend}</p><table class='heatmap'><tr><th>library</th><th>kind</th>"
            f"<th>source</th>{head}</tr>{''.join(body)}</table>{more}")
