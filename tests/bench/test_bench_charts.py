"""``python -m bench.charts``: every benchmark with a figure gets its chart (well-formed
SVG), the fragment shows them with the run's context, and rows without a figure are
left out."""

from __future__ import annotations

import itertools
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import charts  # noqa: E402


def row(
    benchmark: str, case: str, client: str, peer: str, value: float | None, **figures: float
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "case": case,
        "client": client,
        "peer": peer,
        "status": "ok" if value is not None else "failed",
        "value": value,
        "unit": "",
        "reason": "" if value is not None else "timed out",
        "figures": figures,
    }


RESULTS: dict[str, Any] = {
    "machine": "- machine: 2 CPUs\n- Python 3.11.7",
    "started_utc": "2026-12-07T12:00:00Z",
    "seconds": 600.0,
    "load_at_start": [1.5, 1.2, 1.0],
    "load_at_end": [2.0, 1.5, 1.1],
    "rows": [
        row("throughput", "deployments", "decode floor", "floor", 70_000.0),
        row("throughput", "deployments", "kube-informer", "ours", 60_000.0),
        row("throughput", "deployments", "client-go <protobuf>", "client-go", 55_000.0),
        row("throughput", "configmaps", "kube-informer", "ours", 200_000.0),
        row("throughput", "configmaps", "kopf", "kopf", None),
        row("sync", "20,000 Deployments", "kube-informer", "ours", 0.7, peak_rss_mb=300.0),
        row("sync", "20,000 Deployments", "client-go", "client-go", 0.69),
        row("memory", "20,000 Deployments, transform on", "kube-informer", "ours", 4.1),
        row("latency", "", "kube-informer", "ours", 3.0, p99_ms=4.7),
        row("latency", "", "client-go", "client-go", 2.9, p99_ms=4.6),
        row("startup", "", "import informer", "ours", 0.05),
        *[
            row(
                "scale",
                f"{n:,}",
                "kube-informer",
                "ours",
                n / 70_000,
                objects=float(n),
                cache_rss_mb=n * 1.76 / 1024,
                stall_cpu_ms=40.0 + n / 10_000,
            )
            for n in (10_000, 50_000, 100_000, 200_000)
        ],
        *[
            row(
                "scale",
                f"{n:,}",
                "client-go",
                "client-go",
                n / 78_000,
                objects=float(n),
                cache_rss_mb=n * 1.35 / 1024,
            )
            for n in (10_000, 50_000, 100_000, 200_000)
        ],
    ],
}


def test_every_benchmark_with_a_figure_is_drawn(tmp_path: Path) -> None:
    source = tmp_path / "results.json"
    source.write_bytes(orjson.dumps(RESULTS))
    assert charts.main([str(source), str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(
        [
            "charts.txt",
            "latency.svg",
            "memory-20-000-deployments-transform-on.svg",
            "scaling-memory.svg",
            "scaling-seconds.svg",
            "scaling-stall.svg",
            "startup.svg",
            "sync-20-000-deployments.svg",
            "throughput-configmaps.svg",
            "throughput-deployments.svg",
        ]
    )
    for svg in (tmp_path / "out").glob("*.svg"):
        root = ET.fromstring(svg.read_text())  # well-formed, labels escaped
        assert root.tag.endswith("svg")
    throughput = (tmp_path / "out" / "throughput-deployments.svg").read_text()
    assert "client-go &lt;protobuf&gt;" in throughput
    assert throughput.count(charts.ACCENT) == 1  # kube-informer's bar only
    page = (tmp_path / "out" / "charts.txt").read_text()
    assert "load average 1.5 at the start, 2.0 at the end" in page
    assert page.count("![") == 10 - 1
    assert "](out/throughput-deployments.svg)" in page  # relative to the including page
    assert "kopf" not in (tmp_path / "out" / "throughput-configmaps.svg").read_text()


def test_the_scaling_lines_hold_one_point_per_size() -> None:
    drawn = {c.file: c.svg for c in charts.render(RESULTS)}
    stall = drawn["scaling-stall.svg"]
    assert stall.count("<circle") == 4  # client-go has no stall figure
    assert drawn["scaling-seconds.svg"].count("<circle") == 8
    assert drawn["scaling-seconds.svg"].count("<polyline") == 2


def test_nothing_to_draw_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "results.json"
    source.write_bytes(orjson.dumps({"rows": [row("sync", "x", "y", "ours", None)]}))
    assert charts.main([str(source), str(tmp_path / "out")]) == 1


@pytest.mark.parametrize(("low", "high"), [(0, 7.3), (0, 0.42), (0, 212_000), (0, 0)])
def test_ticks_cover_the_range_with_round_steps(low: float, high: float) -> None:
    ticks = charts._ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_several_runs_are_drawn_together_and_each_is_listed(tmp_path: Path) -> None:
    rows = RESULTS["rows"]
    default = {**RESULTS, "argv": ["--json", "a.json"]}
    default["rows"] = [r for r in rows if r["benchmark"] != "scale"]
    scale = {
        **RESULTS,
        "started_utc": "2026-12-07T13:00:00Z",
        "load_at_start": [0.7, 0.5, 0.4],
        "argv": ["scale", "--json", "/tmp/b.json"],
        "rows": [r for r in rows if r["benchmark"] == "scale"],
    }
    paths = []
    for name, run in (("a.json", default), ("b.json", scale)):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(orjson.dumps(run))
    assert charts.main([*map(str, paths), str(tmp_path / "out")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "out").glob("*.svg"))
    assert drawn == sorted(c.file for c in charts.render(RESULTS))  # as from one file
    page = (tmp_path / "out" / "charts.txt").read_text()
    assert "a.json, b.json" in page
    assert "- run started 2026-12-07T12:00:00Z, 600.0 s" in page
    assert "- run started 2026-12-07T13:00:00Z, 600.0 s (`python -m bench scale`)" in page
    assert "load average 0.7 at the start" in page
    assert page.count("- machine: 2 CPUs") == 1
