"""Tables and figures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def fmt_ratio(a: float | None, b: float | None, *, invert: bool = False) -> str:
    """``a / b`` as ``1.23x`` (``b / a`` with ``invert``: for times, lower is better)."""
    if a is None or b is None or a == 0 or b == 0:
        return "-"
    r = b / a if invert else a / b
    return f"{r:.2f}x"


def fmt_num(v: float | None, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}{unit}"


def table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str] = ()
) -> str:
    """A GitHub-flavoured Markdown table (readable as plain text too)."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"

    out = [f"### {title}", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in rows)
    if notes:
        out.append("")
        out.extend(notes)
    return "\n".join(out) + "\n"
