"""``python -m bench.charts RESULTS.json [MORE.json ...] DIR``: the docs site's charts.

Reads what ``python -m bench --json RESULTS.json`` wrote (every row's figure, the machine
and the load of the run; several files: several runs, e.g. the default set and the
named-only ``scale``, their rows drawn together and each run listed) and writes, into
``DIR``, one SVG file per chart and ``charts.txt``: a Markdown fragment that shows them,
by section, with each run's date and load and the machine, its image links relative to
``DIR``'s parent. The docs site includes it in the page beside ``DIR``
(``docs/benchmarks/`` -> ``docs/benchmarks.md``: ``--8<-- "docs/benchmarks/charts.txt"``);
it is not a page of its own (a ``.txt``, so the strict site build does not want it in
the navigation). Run the command again on new JSON files to refresh them: nothing else
is kept between runs.

The SVG is written directly (no plotting library to install): horizontal bars for the
comparisons (throughput, sync, memory, latency, start-up; kube-informer's rows in the
accent colour) and lines for the scaling curve (seconds, cache memory and the event
loop's longest stall against the number of objects). Only rows that hold a figure are
drawn; a benchmark without any is left out of the page.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import orjson

__all__ = ["Chart", "bar_chart", "fragment", "line_chart", "main", "merge", "render"]

WIDTH = 760
LABEL_W = 330
ROW_H = 24
ACCENT = "#d9480f"
PALETTE = ("#1c7ed6", "#37b24d", "#ae3ec9", "#f59f00", "#495057", "#0ca678", "#e64980", "#74c0fc")
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its file name, the section it belongs to and its SVG."""

    file: str
    section: str
    title: str
    svg: str


def _fmt(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _tick(value: float) -> str:
    """A tick label: round values come from :func:`_ticks`, so ``g`` is exact enough."""
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{round(value, 6):g}"


def _text(
    x: float, y: float, text: str, *, size: int = 12, anchor: str = "start", **attrs: str
) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT}'
        f"{extra}>{escape(text)}</text>"
    )


def _svg(width: float, height: float, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def bar_chart(
    title: str, unit: str, bars: Sequence[tuple[str, float, bool]], *, note: str = ""
) -> str:
    """Horizontal bars: ``(label, value, accent)`` each, in the order given; the value
    is printed after its bar with ``unit``."""
    top = 52 if note else 38
    height = top + ROW_H * len(bars) + 16
    peak = max((v for _, v, _ in bars), default=1.0) or 1.0
    area = WIDTH - LABEL_W - 90
    body = [_text(12, 22, title, size=15, font_weight="600")]
    if note:
        body.append(_text(12, 40, note, size=11, fill="#495057"))
    for i, (label, value, accent) in enumerate(bars):
        y = top + i * ROW_H
        w = max(1.0, area * value / peak)
        colour = ACCENT if accent else "#868e96"
        body.append(_text(LABEL_W - 8, y + 16, label, anchor="end", fill="#212529"))
        body.append(
            f'<rect x="{LABEL_W}" y="{y + 4}" width="{w:.1f}" height="{ROW_H - 8}" '
            f'fill="{colour}" rx="2"/>'
        )
        body.append(_text(LABEL_W + w + 6, y + 16, f"{_fmt(value)} {unit}", fill="#212529"))
    return _svg(WIDTH, height, body)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values, evenly spaced, from at most ``low`` to at least ``high``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(low / step) * step
    ticks = [first, first + step]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(first + len(ticks) * step)
    return ticks


def line_chart(
    title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]]
) -> str:
    """Lines with markers, one per series (``name: [(x, y)]``), on linear axes from 0,
    with a legend below."""
    left, right, top, plot_h = 70, 20, 40, 300
    legend_rows = math.ceil(len(series) / 2)
    height = top + plot_h + 50 + legend_rows * 20
    plot_w = WIDTH - left - right
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x_ticks = _ticks(0, max(xs, default=1.0))
    y_ticks = _ticks(0, max(ys, default=1.0))
    x_max, y_max = x_ticks[-1], y_ticks[-1]

    def px(x: float) -> float:
        return left + plot_w * x / x_max

    def py(y: float) -> float:
        return top + plot_h - plot_h * y / y_max

    body = [_text(12, 22, title, size=15, font_weight="600")]
    for t in y_ticks:
        body.append(
            f'<line x1="{left}" y1="{py(t):.1f}" x2="{WIDTH - right}" y2="{py(t):.1f}" '
            'stroke="#e9ecef"/>'
        )
        body.append(_text(left - 6, py(t) + 4, _tick(t), size=11, anchor="end", fill="#495057"))
    for t in x_ticks:
        body.append(_text(px(t), top + plot_h + 16, _tick(t), size=11, anchor="middle"))
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
        'stroke="#868e96"/>'
    )
    body.append(_text(left + plot_w / 2, top + plot_h + 34, x_label, size=12, anchor="middle"))
    body.append(
        _text(16, top + plot_h / 2, y_label, size=12, anchor="middle",
              transform=f"rotate(-90 16 {top + plot_h / 2:.1f})")
    )  # fmt: skip
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>' for x, y in pts
        ]
        lx = 20 + (i % 2) * (WIDTH / 2)
        ly = top + plot_h + 56 + (i // 2) * 20
        body.append(f'<rect x="{lx:.0f}" y="{ly - 9}" width="14" height="4" fill="{colour}"/>')
        body.append(_text(lx + 20, ly - 3, name, size=11))
    return _svg(WIDTH, height, body)


# ------------------------------------------------------------------------ from the JSON


def _ok(rows: list[dict[str, Any]], benchmark: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["benchmark"] == benchmark and r["status"] == "ok"]


def _by_case(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["case"], []).append(r)
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def _ours(row: dict[str, Any]) -> bool:
    return bool(row["peer"] == "ours")


def render(results: dict[str, Any]) -> list[Chart]:
    """Every chart the rows of ``results`` (``python -m bench --json``) allow."""
    rows: list[dict[str, Any]] = results.get("rows", [])
    charts: list[Chart] = []
    for case, group in _by_case(_ok(rows, "throughput")).items():
        ordered = sorted(group, key=lambda r: -r["value"])
        title = f"Watch throughput, {case}: events/s (higher is better)"
        svg = bar_chart(title, "ev/s", [(r["client"], r["value"], _ours(r)) for r in ordered])
        charts.append(Chart(f"throughput-{_slug(case)}.svg", "Pipeline throughput", title, svg))
    for case, group in _by_case(_ok(rows, "sync")).items():
        ordered = sorted(group, key=lambda r: r["value"])
        title = f"Initial sync, {case}: seconds (lower is better)"
        svg = bar_chart(title, "s", [(r["client"], r["value"], _ours(r)) for r in ordered])
        charts.append(Chart(f"sync-{_slug(case)}.svg", "Initial sync", title, svg))
    for case, group in _by_case(_ok(rows, "memory")).items():
        ordered = sorted(group, key=lambda r: r["value"])
        title = f"Memory per cached object, {case}: KB (lower is better)"
        svg = bar_chart(title, "KB", [(r["client"], r["value"], _ours(r)) for r in ordered])
        charts.append(Chart(f"memory-{_slug(case)}.svg", "Memory per cached object", title, svg))
    latency = _ok(rows, "latency")
    if latency:
        bars: list[tuple[str, float, bool]] = []
        for r in sorted(latency, key=lambda r: r["value"]):
            bars.append((f"{r['client']}, p50", r["value"], _ours(r)))
            if "p99_ms" in r.get("figures", {}):
                bars.append((f"{r['client']}, p99", r["figures"]["p99_ms"], _ours(r)))
        title = "Reconcile latency, API write to reconcile(key): ms (lower is better)"
        charts.append(
            Chart("latency.svg", "Reconcile latency", title, bar_chart(title, "ms", bars))
        )
    startup = _ok(rows, "startup")
    if startup:
        title = "Start-up: seconds (lower is better)"
        named = [
            (
                f"{r['client']} ({r['case']})" if r["case"] else str(r["client"]),
                r["value"],
                _ours(r),
            )
            for r in startup
        ]
        charts.append(Chart("startup.svg", "Start-up", title, bar_chart(title, "s", named)))
    scale = [r for r in _ok(rows, "scale") if "objects" in r.get("figures", {})]
    if scale:
        for key, label, file in (
            ("value", "seconds to sync", "scaling-seconds.svg"),
            ("cache_rss_mb", "cache RSS (MB)", "scaling-memory.svg"),
            ("stall_cpu_ms", "longest event-loop stall (ms of CPU)", "scaling-stall.svg"),
        ):
            series: dict[str, list[tuple[float, float]]] = {}
            for r in scale:
                y = r["value"] if key == "value" else r["figures"].get(key)
                if y is not None:
                    series.setdefault(r["client"], []).append((r["figures"]["objects"], y))
            if series:
                title = f"Scaling curve (ConfigMaps): {label} against objects cached"
                svg = line_chart(title, "objects", label, series)
                charts.append(Chart(file, "Scaling curve", title, svg))
    return charts


def merge(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' results as one: every run's rows; the runs kept under ``runs``."""
    if len(runs) == 1:
        return runs[0]
    rows = [r for run in runs for r in run.get("rows", [])]
    return {"rows": rows, "runs": list(runs), "machine": runs[0].get("machine")}


def _run_lines(run: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    load = run.get("load_at_start")
    load_end = run.get("load_at_end")
    what = " ".join(a for a in run.get("argv", []) if not a.startswith("-") and "/" not in a)
    if run.get("started_utc"):
        named = f" (`python -m bench {what}`)" if what else ""
        lines.append(f"- run started {run['started_utc']}, {run.get('seconds', '?')} s{named}")
    if load:
        end = f", {load_end[0]:.1f} at the end" if load_end else ""
        lines.append(f"- load average {load[0]:.1f} at the start{end} (1 min)")
    return lines


def fragment(results: dict[str, Any], charts: Sequence[Chart], source: str, prefix: str) -> str:
    """``charts.txt``: the charts by section (images at ``prefix`` + file), with each
    run's date and load and the machine."""
    runs = results.get("runs") or [results]
    several = len(runs) > 1
    lines = [
        "<!-- Generated by `python -m bench.charts` from the JSON output of "
        f"{'`python -m bench` runs' if several else 'one `python -m bench` run'} ({source}); "
        "do not edit, run it again. -->",
        "",
        f"Charts of {'these' if several else 'one'} `python -m bench` run"
        f"{'s' if several else ''} (kube-informer's rows in orange; the tables, "
        "methods and readings follow).",
        "",
    ]
    for run in runs:
        lines += _run_lines(run)
    if results.get("machine"):
        lines += [ln for ln in str(results["machine"]).splitlines() if ln.strip()]
    lines.append("")
    section = ""
    for chart in charts:
        if chart.section != section:
            section = chart.section
            lines += [f"### {section}", ""]
        lines += [f"![{chart.title}]({prefix}{chart.file})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.charts",
        description="Draw the docs' benchmark charts (SVG) from `python -m bench --json`.",
    )
    p.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="the JSON file(s) `python -m bench --json` wrote (one per run)",
    )
    p.add_argument(
        "directory", type=Path, help="where to write the SVG files and charts.txt (docs/benchmarks)"
    )
    args = p.parse_args(argv)
    results = merge([orjson.loads(path.read_bytes()) for path in args.results])
    names = ", ".join(path.name for path in args.results)
    charts = render(results)
    if not charts:
        print(f"{names}: no row holds a figure; nothing drawn", file=sys.stderr)
        return 1
    args.directory.mkdir(parents=True, exist_ok=True)
    for chart in charts:
        (args.directory / chart.file).write_text(chart.svg)
    prefix = f"{args.directory.resolve().name}/"
    text = fragment(results, charts, names, prefix)
    (args.directory / "charts.txt").write_text(text)
    print(f"{len(charts)} charts and charts.txt written to {args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
